"""The simulated pen's datasheet: hard limits, physics constants, and its per-unit identity.

The serial number and the hidden calibration error derive from `seed` alone, so the same seed
is the same pen from one run to the next and a calibration made against it stays valid.

Calibration convention (hidden from the host, read only through the gauge):

    true_protrusion_mm = gain * actuator_mm - offset_mm        (clamped at 0 by the gauge)

The cartridge membrane swallows `offset_mm` (0.2..0.5 mm) of travel and the mechanics scale
the rest by `gain` (0.9..1.1). The actuator command for a wanted true depth is therefore
`(depth_mm + offset_mm) / gain`: for every true depth up to 1.8 mm it lies inside the default
0..2.5 mm actuator travel. Below `offset_mm / gain` the needle is still inside the cartridge.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field

# What a user may configure (pensim:// options, `smp sim` flags, PenSimulator). IDENTIFY sends
# lease_max_ms as a u16, and a pen that grants no lease runs no pass. Telemetry 0 = off at boot
# (SET_TELEMETRY_RATE allows 0 .. telemetry_max_hz).
LEASE_MAX_MS_RANGE = (1, 65535)
TELEMETRY_HZ_RANGE = (0, 1000)  # the default telemetry_max_hz
BAUD_RANGE = (1, 12_000_000)
SEED_MAX = 2**63 - 1


# PenModel fields a simulator could not run with (a zero time constant divides by zero, a NaN
# stops the firmware's clock, a limit past its IDENTIFY field breaks every IDENTIFY reply).
# Limits a host must refuse (a minimum above its maximum, a duty over 100 %) stay allowed: QA
# builds such a pen to check the host refuses it at connect (test_hostile_identity.py).
# name: (low, high, low excluded); whole-number fields are those annotated int.
_INF = math.inf
MODEL_RANGES: dict[str, tuple[float, float, bool]] = {
    "depth_min_um": (-32768, 32767, False), "depth_max_um": (-32768, 32767, False),
    "speed_min_hz": (0, 655.35, False), "speed_max_hz": (0, 655.35, False),
    "duty_min_pct": (0, 6553.5, False), "duty_max_pct": (0, 6553.5, False),
    "period_min_ms": (0, 4_294_967.295, True), "period_max_ms": (0, 4_294_967.295, True),
    "current_max_a": (0, 65.535, False), "temp_max_c": (-327.68, 327.67, False),
    "telemetry_max_hz": (0, 65535, False), "boot_ms": (0, 3_600_000, False),
    "motor_tau_s": (0, _INF, True), "jam_tau_s": (0, _INF, True),
    "thermal_tau_s": (0, _INF, True), "depth_slew_mm_per_s": (0, _INF, True),
    "depth_band_um": (0, 32767, False), "observer_ms": (1, 3_600_000, False),
    "observer_ratio": (0, 1, False), "ambient_c": (-273.15, 1000, False),
    **{name: (0, _INF, False) for name in (
        "current_idle_a", "current_per_hz_a", "load_a", "jam_current_a", "short_current_a",
        "current_noise_a", "drift_rate_mm_per_s", "drift_max_mm", "temp_rise_c_per_a",
        "overtemp_inject_c", "temp_clear_hysteresis_c", "observer_min_hz", "jam_detect_a",
        "gauge_noise_mm", "gauge_nonlinearity_mm", "skin_contact_sd_mm", "offset_mm")},
    "speed_ripple_pct": (0, 100, False), "speed_wander_pct": (0, 100, False),
    "gain": (0, _INF, True),
}


def check_model(model: PenModel) -> None:
    """Raise ValueError naming the first PenModel field a simulator cannot run with, its
    value and the allowed range (fields are checked when a PenSimulator is made)."""
    if isinstance(model.seed, bool) or not isinstance(model.seed, int) \
            or not -SEED_MAX <= model.seed <= SEED_MAX:  # "3" or 1.5 would be another pen
        raise ValueError(f"PenModel seed={model.seed!r:.60} is out of range: give a whole "
                         f"number from {-SEED_MAX} to {SEED_MAX} (which simulated pen)")
    ints = {name for name, kind in PenModel.__annotations__.items() if kind == "int"}
    for name, (low, high, low_open) in MODEL_RANGES.items():
        value = getattr(model, name)
        whole = name in ints
        ok_type = isinstance(value, int if whole else int | float) \
            and not isinstance(value, bool)
        if ok_type and math.isfinite(value) and (value > low if low_open else value >= low) \
                and value <= high:
            continue
        kind = "a whole number" if whole else "a finite number"
        shown = [str(int(x)) if float(x).is_integer() else f"{x}" for x in (low, high)]
        allowed = f"{kind} {'>' if low_open else '>='} {shown[0]}" + (
            f" and <= {shown[1]}" if high < _INF else "")
        raise ValueError(f"PenModel {name}={value!r} is out of range: give {allowed}")
    for name in ("footswitch_fitted", "pedal_down_at_start"):
        if not isinstance(getattr(model, name), bool):
            raise ValueError(f"PenModel {name}={getattr(model, name)!r}: give True or False")
    check_serial(model.serial)
    version = model.fw_version
    if not (isinstance(version, tuple) and len(version) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                    for v in version)):
        raise ValueError(f"PenModel fw_version={version!r} is out of range: give three whole "
                         "numbers 0..255, e.g. (1, 0, 0)")


def check_serial(serial: object) -> None:
    """Raise ValueError unless `serial` fits IDENTIFY's field: at most 12 ASCII characters.
    An empty serial, a space, a NUL or an escape sequence fit: they model a hostile pen, which
    the host refuses at connect (tests/smpdevice/control/test_hostile_identity.py)."""
    if not (isinstance(serial, str) and len(serial) <= 12 and serial.isascii()):
        raise ValueError(f"PenModel serial={serial!r} is out of range: give at most 12 ASCII "
                         "characters (IDENTIFY's field), e.g. 'SMP-0001'")


def check_configurable(model: PenModel, baud: int | None = None) -> None:
    """Raise ValueError naming the setting, its value and the allowed range."""
    check_model(model)
    checks = [("lease_max_ms", model.lease_max_ms, LEASE_MAX_MS_RANGE),
              ("telemetry_default_hz", model.telemetry_default_hz,
               (TELEMETRY_HZ_RANGE[0], min(TELEMETRY_HZ_RANGE[1], model.telemetry_max_hz)))]
    if baud is not None:
        checks.append(("baud", baud, BAUD_RANGE))
    for name, value, (low, high) in checks:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name}={value!r} is out of range: a whole number {low}..{high}")


def _rng(seed: int, purpose: str) -> random.Random:
    """A generator for one purpose, so adding a purpose never shifts another's numbers."""
    return random.Random(f"{seed}:{purpose}")


def serial_from_seed(seed: int) -> str:
    """`SMP-` + 8 characters, e.g. `SMP-7K2Q9XAB`; 12 ASCII bytes, the IDENTIFY field size."""
    rng = _rng(seed, "serial")
    alphabet = string.ascii_uppercase + string.digits
    return "SMP-" + "".join(rng.choice(alphabet) for _ in range(8))


def calibration_error_from_seed(seed: int) -> tuple[float, float]:
    """(offset_mm, gain) of this unit: offset 0.2..0.5 mm, gain 0.9..1.1."""
    rng = _rng(seed, "calibration")
    return round(rng.uniform(0.2, 0.5), 4), round(rng.uniform(0.9, 1.1), 4)


@dataclass
class PenModel:
    """Everything a test or QA may configure about the simulated pen."""

    seed: int = 0

    # Hard limits (reported in IDENTIFY; a setpoint outside them is NACKed, never clamped).
    depth_min_um: int = 0
    depth_max_um: int = 2500
    speed_min_hz: float = 30.0
    speed_max_hz: float = 180.0
    duty_min_pct: float = 5.0
    duty_max_pct: float = 100.0
    period_min_ms: float = 20.0
    period_max_ms: float = 1000.0
    current_max_a: float = 1.5
    temp_max_c: float = 55.0
    lease_max_ms: int = 2000
    telemetry_max_hz: int = 1000

    # Footswitch: fitted (Capability FOOTSWITCH), and pressed at start (the simulated
    # technician holds it down, so footswitch mode REQUIRED runs until QA releases it).
    footswitch_fitted: bool = True
    pedal_down_at_start: bool = True

    # Firmware.
    fw_version: tuple[int, int, int] = (1, 0, 0)
    boot_ms: int = 50
    telemetry_default_hz: int = 100

    # Motor: first-order lag toward the speed setpoint while driven, coasting down when not.
    motor_tau_s: float = 0.020
    jam_tau_s: float = 0.003  # a jammed cam stops far faster than it spins up
    current_idle_a: float = 0.10  # driven motor, no speed
    current_per_hz_a: float = 0.004  # back-EMF and friction grow with speed
    load_a: float = 0.05  # skin drag while the needle is driven
    jam_current_a: float = 1.15  # extra current of a jammed, stalled motor (total < the trip)
    short_current_a: float = 2.0  # added by an injected winding short (above the trip)
    current_noise_a: float = 0.005

    # Depth actuator: slew-rate limited travel toward the commanded depth.
    depth_slew_mm_per_s: float = 10.0
    depth_band_um: int = 150  # DEPTH_OUT_OF_BAND when measured and stepped position differ more
    drift_rate_mm_per_s: float = 2.0  # injected depth drift grows at this rate ...
    drift_max_mm: float = 0.4  # ... up to this

    # Temperature: first-order toward ambient + rise proportional to mean motor current.
    ambient_c: float = 25.0
    temp_rise_c_per_a: float = 12.0
    thermal_tau_s: float = 30.0
    overtemp_inject_c: float = 5.0  # injected overtemperature starts this far above the trip
    temp_clear_hysteresis_c: float = 2.0  # CLEAR_FAULTS needs temp below max - this

    # Firmware's jam / encoder-loss observer.
    observer_min_hz: float = 20.0  # only judge when the expected speed is above this
    observer_ratio: float = 0.5  # measured below this share of expected is suspicious
    observer_ms: int = 10  # ... for this many consecutive driven ticks
    jam_detect_a: float = 1.0  # suspicious speed with current above this is a jam

    # Realism, every draw seeded (the same seed gives the same readings in the same order).
    # Defaults are small: what a good bench sees, and within the suite's tolerances; QA raises
    # them to rehearse a worn pen or a poor gauge (0 switches a model off).
    gauge_noise_mm: float = 0.0005  # sd of each gauge reading (a 1 µm digital gauge)
    gauge_nonlinearity_mm: float = 0.001  # peak bow of the gauge across its 0..3 mm travel
    skin_contact_sd_mm: float = 0.02  # depth in skin, impression to impression (hand pressure)
    speed_ripple_pct: float = 1.0  # cam load ripple, once per stroke, % of speed
    speed_wander_pct: float = 0.3  # slow drift of the motor speed (sd, % of speed; tau 0.5 s)

    # "" / None: from the seed. Any other value is the test's own, checked like every field
    # (a gain <= 0 or a negative offset is refused, never silently replaced).
    serial: str = field(default="")
    offset_mm: float = field(default=None)  # type: ignore[assignment]  # None until set below
    gain: float = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.serial:
            self.serial = serial_from_seed(self.seed)
        check_serial(self.serial)
        offset_mm, gain = calibration_error_from_seed(self.seed)
        if self.offset_mm is None:
            self.offset_mm = offset_mm
        if self.gain is None:
            self.gain = gain

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        self.__dict__.pop("_setpoint_limits", None)  # a limit may have changed: recompute

    def setpoint_limits(self) -> tuple[int, int, int, int, int, int, int, int]:
        """(depth, speed, duty, period) min and max in wire units, in SET_SETPOINTS order;
        computed once, not per command (any change to the model recomputes it)."""
        limits = self.__dict__.get("_setpoint_limits")
        if limits is None:
            limits = self.__dict__["_setpoint_limits"] = (
                self.depth_min_um, self.depth_max_um,
                self.speed_min_centihz, self.speed_max_centihz,
                self.duty_min_permille, self.duty_max_permille,
                self.period_min_us, self.period_max_us,
            )
        return limits

    # Wire-unit views of the limits (exact integers, as IDENTIFY carries them).
    @property
    def speed_min_centihz(self) -> int:
        return round(self.speed_min_hz * 100)

    @property
    def speed_max_centihz(self) -> int:
        return round(self.speed_max_hz * 100)

    @property
    def duty_min_permille(self) -> int:
        return round(self.duty_min_pct * 10)

    @property
    def duty_max_permille(self) -> int:
        return round(self.duty_max_pct * 10)

    @property
    def period_min_us(self) -> int:
        return round(self.period_min_ms * 1000)

    @property
    def period_max_us(self) -> int:
        return round(self.period_max_ms * 1000)

    @property
    def current_max_ma(self) -> int:
        return round(self.current_max_a * 1000)

    @property
    def temp_max_centideg_c(self) -> int:
        return round(self.temp_max_c * 100)

    def true_depth_mm(self, actuator_mm: float) -> float:
        """True needle protrusion for an actuator position (the hidden calibration error)."""
        return self.gain * actuator_mm - self.offset_mm

    def actuator_mm_for(self, true_depth_mm: float) -> float:
        """Actuator position that gives `true_depth_mm` of protrusion (for tests and QA)."""
        return (true_depth_mm + self.offset_mm) / self.gain
