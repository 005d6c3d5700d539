"""The pen's body: motor, cam, depth actuator, temperature, cartridge, and the device faults.

A small, honest model stepped once per firmware tick (1 ms):

- Motor speed follows the drive with a first-order lag, `d(speed)/dt = (drive - speed) / tau`
  (tau = `motor_tau_s`, ~20 ms); when the needle rests (off phase of the duty cycle, or stopped)
  the drive is 0 and the cam coasts down with the same constant. Being linear, the mean speed
  over whole pulse periods equals setpoint x duty, so strokes ~= speed x time x duty.
- A jam drives the speed to 0 with a much faster constant; the lost back-EMF shows as stall
  current (idle + load + `jam_current_a` at standstill, below the overcurrent trip).
- Motor current while driven: idle + per-Hz term (back-EMF, friction) + load (skin drag);
  stall current on a jam; an injected winding short adds more than the overcurrent trip.
- Temperature: first-order (tau `thermal_tau_s`) toward ambient + rise proportional to current.
- Depth actuator: a stepper whose step count slews toward the command at `depth_slew_mm_per_s`;
  the position sensor reads the real position = steps + drift (an injected slip), which is what
  the firmware reports and what the gauge sees (through the hidden calibration error).
- Speed ripple: the cam's load makes the real speed ripple once per stroke
  (`speed_ripple_pct`, phase from the seed) and wander slowly (`speed_wander_pct` sd, a seeded
  first-order random walk with tau 0.5 s, drawn every 10 ms). Strokes integrate the real speed;
  the encoder reports it; `speed_hz` stays the lag model's mean, which the ripple averages to.
- Skin contact: the depth reached in skin differs from impression to impression by a seeded
  Gaussian (`skin_contact_sd_mm`), a pure function of (seed, impression number). The pen's
  sensor sees the actuator, not the skin, so telemetry does not show it (`skin_depth_mm`).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.pen_model import PenModel

TICK_S = 0.001
WANDER_STEP_S = 0.010  # the speed wander is drawn this often ...
WANDER_EVERY_TICKS = round(WANDER_STEP_S / TICK_S)
WANDER_TAU_S = 0.5  # ... and forgets its past with this time constant
_TWO_PI = 2 * math.pi  # the value `2 * math.pi * x` multiplies x by
_sin = math.sin


@dataclass
class Conditions:
    """Device fault causes that are currently present (what QA injects)."""

    jammed: bool = False
    encoder_lost: bool = False
    winding_short: bool = False  # overcurrent cause
    overheating: bool = False  # overtemperature cause (cooling failure)
    drifting: bool = False  # depth drift cause
    cartridge_present: bool = True
    pedal_down: bool = True  # the footswitch (the simulated technician holds it down)


class PenPhysics:
    """State of the pen's hardware, advanced one tick at a time by the firmware."""

    def __init__(self, model: PenModel) -> None:
        self.model = model
        self.cond = Conditions()
        self._rng = random.Random(f"{model.seed}:physics")
        self._up_k = 1.0 - math.exp(-TICK_S / model.motor_tau_s)
        self._jam_k = 1.0 - math.exp(-TICK_S / model.jam_tau_s)
        self._temp_k = 1.0 - math.exp(-TICK_S / model.thermal_tau_s)
        self._slew_um = model.depth_slew_mm_per_s * 1000 * TICK_S
        self._drift_step_um = model.drift_rate_mm_per_s * 1000 * TICK_S
        self.speed_hz = 0.0
        self.current_a = 0.0
        self.temp_c = model.ambient_c
        self.steps_um = 0.0  # where the stepper believes the actuator is
        self.drift_um = 0.0  # slip between the stepper and the real position
        self.stroke_acc = 0.0
        self.driven = False
        self._speed_rng = random.Random(f"{model.seed}:speed")
        self._ripple = model.speed_ripple_pct / 100
        self._ripple_phase = self._speed_rng.uniform(0.0, 2 * math.pi)
        self._wander_sd = model.speed_wander_pct / 100
        self._wander_a = math.exp(-WANDER_STEP_S / WANDER_TAU_S)
        self._wander = 0.0
        self._wander_ticks = 0

    # -- measurements -------------------------------------------------------------------
    @property
    def position_um(self) -> float:
        """Real actuator position (what the position sensor reads)."""
        return self.steps_um + self.drift_um

    @property
    def actual_hz(self) -> float:
        """The real cam speed: the lag model's speed with the ripple and the wander on it."""
        if self.speed_hz == 0.0:
            return 0.0
        ripple = self._ripple * math.sin(2 * math.pi * self.stroke_acc + self._ripple_phase)
        return max(0.0, self.speed_hz * (1.0 + ripple + self._wander))

    @property
    def encoder_hz(self) -> float:
        """Speed as the encoder reports it (0 without encoder edges)."""
        return 0.0 if self.cond.encoder_lost else self.actual_hz

    @property
    def strokes(self) -> int:
        return int(self.stroke_acc)

    def true_depth_mm(self) -> float:
        return self.model.true_depth_mm(self.position_um / 1000)

    def skin_depth_mm(self, impression: int) -> float:
        """Depth reached in skin during impression number `impression` (0 inside the
        cartridge): the protrusion plus that impression's seeded skin-contact offset."""
        protrusion = self.true_depth_mm()
        if protrusion <= 0.0:
            return 0.0
        sd = self.model.skin_contact_sd_mm
        offset = random.Random(f"{self.model.seed}:skin:{impression}").gauss(0.0, sd) if sd else 0
        return max(0.0, protrusion + offset)

    # -- stepping -----------------------------------------------------------------------
    def tick(self, drive_hz: float, depth_cmd_um: int) -> None:
        # Once per simulated ms: attributes read into locals and `actual_hz` inlined, with the
        # same float operations in the same order as the plain model (the figures are equal).
        m, c = self.model, self.cond
        driven = self.driven = drive_hz > 0
        speed = self.speed_hz
        if c.jammed:
            speed += (0.0 - speed) * self._jam_k
        else:
            speed += (drive_hz - speed) * self._up_k
        if speed < 1e-3:
            speed = 0.0
        self.speed_hz = speed
        if speed:  # at rest (speed 0.0) no wander is drawn and no stroke added (+ 0.0)
            if self._wander_sd:
                self._wander_ticks += 1
                if self._wander_ticks >= WANDER_EVERY_TICKS:
                    self._wander_ticks = 0
                    a = self._wander_a
                    kick = self._speed_rng.gauss(0.0, self._wander_sd * math.sqrt(1 - a * a))
                    self._wander = self._wander * a + kick
            acc = self.stroke_acc
            actual = speed * (1.0 + self._ripple * _sin(_TWO_PI * acc + self._ripple_phase)
                              + self._wander)
            self.stroke_acc = acc + (actual if actual > 0.0 else 0.0) * TICK_S

        if driven:
            amps = m.current_idle_a + m.current_per_hz_a * speed + m.load_a
            if c.jammed:  # stall current grows as the back-EMF of the stopping motor falls
                amps += m.jam_current_a * max(0.0, 1.0 - speed / drive_hz)
            if c.winding_short:
                amps += m.short_current_a
            amps += self._rng.gauss(0.0, m.current_noise_a)
            current = self.current_a = max(0.0, amps)
        else:
            current = self.current_a = 0.0

        target_c = m.ambient_c + m.temp_rise_c_per_a * current
        if c.overheating:
            target_c = max(target_c, m.temp_max_c + m.overtemp_inject_c)
        self.temp_c += (target_c - self.temp_c) * self._temp_k

        delta = depth_cmd_um - self.steps_um
        if abs(delta) <= self._slew_um:
            self.steps_um = float(depth_cmd_um)
        else:
            self.steps_um += math.copysign(self._slew_um, delta)
        if c.drifting:
            self.drift_um = min(self.drift_um + self._drift_step_um, m.drift_max_mm * 1000)

    # -- fault causes -------------------------------------------------------------------
    def set_overheating(self, on: bool) -> None:
        self.cond.overheating = on
        if on:  # a cooling failure: the body is already past the trip
            self.temp_c = max(self.temp_c, self.model.temp_max_c + self.model.overtemp_inject_c)

    def set_drifting(self, on: bool) -> None:
        self.cond.drifting = on
        if not on:  # the slip was fixed (actuator re-seated)
            self.drift_um = 0.0

    def reboot(self) -> None:
        """Power cycle: motor stops; position, temperature and fault causes are physical."""
        self.speed_hz = 0.0
        self.current_a = 0.0
        self.stroke_acc = 0.0
        self.driven = False
