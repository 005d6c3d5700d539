"""The controller's `calibrating` state: the needle off the skin, the pen's hard limits only.

A mixin of `PenController`: the workflows in `smpdevice.calibrate` drive the actuator and the
motor through these, and read back what the pen measured.
"""

from __future__ import annotations

from firmware_protocol import Message, units
from firmware_protocol.codes import Capability
from firmware_protocol.messages import (
    Arm,
    CalibrationRead,
    CalibrationTable,
    CalibrationWrite,
    Disarm,
    LeaseRenew,
    NeedleStart,
    NeedleStop,
    Retract,
    SetSetpoints,
)
from smpdevice import checks
from smpdevice.control.calibration import Calibration
from smpdevice.control.core import ControllerCore
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import State
from smpdevice.envelope import EnvelopeError, Violation
from smpdevice.errors import SmpError
from smpdevice.link.engine import Operation
from smpdevice.link.wire import LinkTimeout

SETTLE_TOLERANCE_MM = 0.01
SPIN_UP_S = 0.3  # the motor reaches speed within this (tau 20 ms in the simulator)


class CalibratingMixin(ControllerCore):
    """begin_calibration / calibration_move / calibration_spin / end_calibration."""

    def begin_calibration(self) -> None:
        self._call(self._do_begin_calibration)

    def calibration_move(self, actuator_mm: float, *,
                         settle_timeout_s: float = 2.0) -> float:
        """Drive the actuator to `actuator_mm`, wait until it settles, return the measured mm."""
        lo, hi = self._travel_mm()
        checks.finite_number("actuator_mm", actuator_mm, lo, hi, unit="mm (actuator travel)")
        self._timeout_arg("settle_timeout_s", settle_timeout_s)
        self._call(self._do_calibration_move, actuator_mm)

        def there() -> bool:
            t = self.telemetry
            return t is not None and abs(t.actuator_mm - actuator_mm) <= SETTLE_TOLERANCE_MM

        if not self._wait_news(lambda: there() or self.state is not State.CALIBRATING,
                               settle_timeout_s):
            raise SmpError(f"the actuator did not settle at {actuator_mm} mm in "
                           f"{settle_timeout_s} s")
        self._raise_if_faulted()
        first = self.telemetry
        assert first is not None  # there() saw it
        self._wait_news(lambda: self.telemetry is not first, settle_timeout_s)  # read after
        return (self.telemetry or first).actuator_mm

    def calibration_spin(self, speed_hz: float, duration_s: float = 1.0) -> float:
        """Run the motor (off skin) at `speed_hz`, return the mean encoder speed after settling."""
        lim = self._ident.limits if self.identity is not None else None
        checks.finite_number("speed_hz", speed_hz, lim.speed_min_hz if lim else 0.0,
                             lim.speed_max_hz if lim else 1e4, unit="Hz")
        self._timeout_arg("duration_s", duration_s)
        self._call(self._do_calibration_spin, speed_hz, True)
        samples: list[float] = []

        def collect(t: PenTelemetry) -> None:
            samples.append(t.speed_hz)

        def stopped() -> bool:
            return self.state is not State.CALIBRATING

        try:
            self._wait_news(stopped, min(SPIN_UP_S, duration_s / 2))  # let it reach speed
            self._raise_if_faulted()
            self.add_telemetry_listener(collect)
            self._wait_news(stopped, duration_s)  # measure (ends early on a fault)
            self._raise_if_faulted()
        finally:
            self.remove_telemetry_listener(collect)
            if self.state is State.CALIBRATING:
                self._call(self._do_calibration_spin, speed_hz, False)
        if not samples:
            raise LinkTimeout("no telemetry while the motor ran")
        return sum(samples) / len(samples)

    def end_calibration(self, calibration: Calibration | None = None) -> None:
        """Back to idle; install `calibration` and store it on the pen where supported."""
        checks.instance("calibration", calibration, (Calibration, type(None)),
                        "a Calibration or None")
        self._call(self._do_end_calibration, calibration)

    def read_calibration_table(self) -> CalibrationTable:
        return self._call(self._do_request, CalibrationRead())

    def _travel_mm(self) -> tuple[float, float]:
        if self.identity is None:
            return (0.0, 1e3)
        return (self._ident.limits.depth_min_mm, self._ident.limits.depth_max_mm)

    # ---- in the loop thread

    def _do_begin_calibration(self) -> None:
        self._require("begin_calibration")
        self._fire("begin_calibration", "calibration")

    def _check_actuator(self, actuator_mm: float) -> None:
        lim = self._ident.limits
        if not lim.depth_min_mm <= actuator_mm <= lim.depth_max_mm:
            raise EnvelopeError("calibration", [Violation(
                "actuator_mm", actuator_mm,
                lim.depth_max_mm if actuator_mm > lim.depth_max_mm else lim.depth_min_mm,
                "is outside the pen's actuator travel")])

    def _calibration_setpoints(self, actuator_mm: float,
                               speed_hz: float) -> SetSetpoints:
        lim = self._ident.limits
        return SetSetpoints(
            depth_um=units.mm_to_um(actuator_mm),
            speed_centihz=units.hz_to_centihz(speed_hz),
            duty_permille=units.pct_to_permille(lim.duty_max_pct),
            period_us=units.ms_to_us(max(lim.period_min_ms, min(100.0, lim.period_max_ms))),
        )

    def _do_calibration_move(self, actuator_mm: float) -> Operation:
        self._require("calibration_move")
        self._check_actuator(actuator_mm)
        self._cal_actuator_mm = actuator_mm
        speed = self._ident.limits.speed_min_hz
        return Operation([self._calibration_setpoints(actuator_mm, speed)])

    def _do_calibration_spin(self, speed_hz: float, on: bool) -> Operation:
        self._require("calibration_spin")
        lim = self._ident.limits
        if on and not lim.speed_min_hz <= speed_hz <= lim.speed_max_hz:
            raise EnvelopeError("calibration", [Violation(
                "speed_hz", speed_hz, lim.speed_max_hz if speed_hz > lim.speed_max_hz
                else lim.speed_min_hz, "is outside the pen's speed range")])
        if not on:
            return Operation([NeedleStop(), Disarm()])
        actuator = self._cal_actuator_mm if self._cal_actuator_mm is not None \
            else lim.depth_min_mm
        self._grant_lease()
        return Operation([self._calibration_setpoints(actuator, speed_hz),
                          *self._footswitch_steps(), LeaseRenew(self.lease_ms), Arm(),
                          NeedleStart()])

    def _do_end_calibration(self, calibration: Calibration | None) -> Operation:
        self._require("end_calibration")
        steps: list[Message] = [NeedleStop(), Retract(), Disarm()]

        def done() -> None:
            self._forget_setpoints()  # calibration moved the actuator
            if calibration is not None:
                self._calibration = calibration
                if self.zone_name is not None:
                    self._zone = self._pen_bounded(self.zones[self.zone_name])
            self._fire("end_calibration", "calibration ended")

        if calibration is not None:
            calibration.check_for(self._ident.serial, port=self.port_url)
        if calibration is not None and Capability.CALIBRATION_TABLE in self._ident.capabilities:
            points = [(units.mm_to_um(a), units.mm_to_um(t)) for a, t in calibration.points[:8]]
            written_at_s = int(calibration.created_at.timestamp())
            steps.append(CalibrationWrite.from_points(points, written_at_s))
        return Operation(steps, done)
