"""The controller's `calibrating` state: the needle off the skin, the pen's hard limits only.

A mixin of `PenController`: the workflows in `smpdevice.calibration.workflow` drive the
actuator and the motor through these, and read back what the pen measured. The speed check
(calibration_spin) is its base, `SpeedCheckMixin` (speed_check.py).

The needle is out past the tip only while the pen is ARMED or RUNNING (docs/protocol.md
section 7), so a depth move arms the pen (SET_SETPOINTS, LEASE_RENEW, ARM: never NEEDLE_START)
and leaves it armed, the needle out at the point, until the next move, a speed check (whose
stop disarms) or end_calibration (NEEDLE_STOP, RETRACT, DISARM). The lease is renewed all the
while by the request engine, as in a session's `armed` (`LEASED` holds `calibrating`): a
technician may take minutes at a gauge prompt, but a host that dies, hangs or loses its cable
stops renewing, and the pen disarms and retracts by itself within one lease. A host alive
whose run is stuck (a prompt nobody answers) would renew forever: the needle stays out at one
point at most `calibration_hold_max_s` after its move, then the controller ends the
calibration itself (NEEDLE_STOP, RETRACT, DISARM; idle), and the reading, when it comes, is
refused (`calibration_point_lost`): every reading must find the needle still at its point.
"""

from __future__ import annotations

from firmware_protocol import units
from firmware_protocol.codes import Capability, FirmwareState, NackReason
from firmware_protocol.messages import (
    Arm,
    CalibrationRead,
    CalibrationTable,
    CalibrationWrite,
    Disarm,
    LeaseRenew,
    NeedleStop,
    Retract,
)
from smpdevice import checks
from smpdevice.control.calibration import Calibration, CalibrationError, checked_whole
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.speed_check import SPIN_UP_S as SPIN_UP_S
from smpdevice.control.speed_check import SpeedCheckMixin
from smpdevice.control.spin import SpinCancel as SpinCancel
from smpdevice.control.spin import SpinStopped as SpinStopped
from smpdevice.control.states import PenFault, State, StateError
from smpdevice.envelope import EnvelopeError, Violation
from smpdevice.errors import SmpError
from smpdevice.link.engine import Operation
from smpdevice.link.wire import CommandRefused, LinkTimeout

SETTLE_TOLERANCE_MM = 0.01
# the longest the needle is held out at one point, not spinning, with no move since: a
# technician reads a gauge in seconds; past this the run is stuck or left (docs/technicians.md)
CALIBRATION_HOLD_MAX_S = 120.0
_HELD = frozenset({FirmwareState.ARMED})
ENDED_UNDER_READING = "calibrating was ended under the reading"


class TravelError(EnvelopeError, checks.InvalidArgument):
    """A calibration move outside the actuator's travel, refused before anything is sent:
    the `EnvelopeError` docs/integration.md names for it (`.violations` says which limit), and
    the `InvalidArgument` of every other checked argument."""

    def __init__(self, message: str, actuator_mm: float, lo_mm: float, hi_mm: float) -> None:
        limit = hi_mm if actuator_mm > hi_mm else lo_mm
        super().__init__("calibration", [Violation(
            "actuator_mm", actuator_mm, limit, "is outside the pen's actuator travel")], message)


# a report in these is never a settled position (review 20: a reboot under a reading)
_LATCHED_PEN = frozenset({FirmwareState.BOOTING, FirmwareState.FAULT, FirmwareState.ESTOP})


class CalibratingMixin(SpeedCheckMixin):
    """begin_calibration / calibration_move / calibration_spin / end_calibration."""

    calibration_hold_max_s: float = CALIBRATION_HOLD_MAX_S  # an instance may set its own
    _cal_held_since_s: float | None = None  # when the last move put the needle at its point
    _cal_hold_ended: str | None = None  # why the hold bound ended the calibration, if it did

    def begin_calibration(self) -> None:
        self._call(self._do_begin_calibration)
        self.__dict__["_spin_noted"] = False  # its first speed check is noted (needle_work)

    def calibration_move(self, actuator_mm: float, *,
                         settle_timeout_s: float = 2.0) -> float:
        """Drive the actuator to `actuator_mm`, wait until it settles, return the measured mm."""
        lo, hi = self._travel_mm()
        try:
            checks.finite_number("actuator_mm", actuator_mm, lo, hi, unit="mm (actuator travel)")
        except checks.InvalidArgument as exc:
            if checks.is_finite_real(actuator_mm):  # a number outside the travel
                raise TravelError(str(exc), float(actuator_mm), lo, hi) from None
            raise
        self._timeout_arg("settle_timeout_s", settle_timeout_s)
        epoch = self._stop_epoch  # a stop asked from here on wins over this move
        try:
            self._call(self._do_calibration_move, actuator_mm, epoch)
        except CommandRefused as exc:
            if exc.reason is NackReason.NO_CARTRIDGE:  # ARM needs one: it says what to do
                exc.args = (f"{exc}: the needle was not moved to {actuator_mm} mm. Fit a "
                            "cartridge (the gauge measures from its tip) and calibrate "
                            "again.",)
            raise

        seen: list[PenTelemetry] = []  # the report there() took

        def there() -> bool:  # armed, driven to this move's depth, and settled there
            # a report from after the move's ARM: one from before an end_calibration still
            # shows the needle at this point while the pen retracted it (review 22a)
            t = self._report_after_requests()
            if (t is None or t.state is not FirmwareState.ARMED
                    or abs(t.actuator_cmd_mm - actuator_mm) >= 0.0005
                    or abs(t.actuator_mm - actuator_mm) > SETTLE_TOLERANCE_MM):
                return False
            seen.append(t)
            return True

        if not self._wait_news(lambda: there() or self.state is not State.CALIBRATING,
                               settle_timeout_s):
            raise SmpError(f"the actuator did not settle at {actuator_mm} mm in "
                           f"{settle_timeout_s} s")
        self._raise_if_faulted()
        first = seen[-1] if seen else self.telemetry
        assert first is not None  # there() saw it
        self._wait_news(lambda: self.telemetry is not first, settle_timeout_s)  # read after
        # that report may come after a reboot or a latch (the actuator reset): never a reading
        # (review 20: a verify point taken across a brownout). Checked again, after the wait
        self._raise_if_faulted()
        t = self.telemetry or first
        if (t.telemetry_seq < first.telemetry_seq or t.faults or t.state in _LATCHED_PEN
                or t.state is not FirmwareState.ARMED):
            # the report itself says so, before the loop has acted on the pen's news (not
            # armed: its lease lapsed and it retracted, so the needle was not at the point)
            what = ("rebooted" if t.telemetry_seq < first.telemetry_seq
                    else f"reported {t.state.name}")
            raise PenFault(f"the pen {what} while the actuator was read at {actuator_mm} mm "
                           f"({', '.join(t.faults.names) or 'no fault'}): that reading is "
                           "not used")
        return t.actuator_mm

    def calibration_point_lost(self, actuator_mm: float) -> str | None:
        """After a gauge reading at `actuator_mm` (what calibration_move answered): why the
        needle may not have stayed at that point while it was read (the run must not use the
        reading), or None. The controller still calibrating, and the pen's latest report
        ARMED, driven to the move's depth, with no fault: a pen that rebooted, latched, lost
        its lease or was ended (the hold bound, the service) under the prompt says otherwise."""
        state = self.state
        if state is not State.CALIBRATING:
            if state is State.IDLE and self._cal_hold_ended is not None:
                return self._cal_hold_ended
            if state is State.IDLE:  # ended by another thread of the caller's, not by us
                return (f"{ENDED_UNDER_READING} (at actuator {actuator_mm} mm): the pen was "
                        "stopped and retracted, and a reading taken while idle is not used")
            return (f"the controller is {state.value} "
                    f"({self.last_fault or 'the calibration was ended'})")
        t, target = self.telemetry, self._cal_actuator_mm
        if (t is None or target is None or t.state is not FirmwareState.ARMED or t.faults
                or abs(t.actuator_cmd_mm - target) >= 0.0005):
            seen = "no report" if t is None else (
                f"the pen reported {t.state.name}, driven to {t.actuator_cmd_mm:.3f} mm "
                f"({', '.join(t.faults.names) or 'no fault'})")
            return (f"the needle did not stay at actuator {actuator_mm} mm while the gauge "
                    f"was read ({seen})")
        return None

    def end_calibration(self, calibration: Calibration | None = None) -> None:
        """Back to idle; install `calibration` and store it on the pen where supported.

        Two requests: the stop (NEEDLE_STOP, RETRACT, DISARM; a stop, never withdrawn, and
        every spin or move still on its way is refused at its turn), then the table write.
        A failed write leaves the controller idle, the pen at rest and the old calibration
        installed; refused, nothing was stored; unanswered, the pen may or may not have
        stored it. Asked in another state, it sends nothing (StateError)."""
        try:
            checked_whole(calibration)
        except CalibrationError as exc:  # the stop still comes: a bad table never holds it up
            self._call(self._do_end_calibration, None)
            exc.args = (f"calibration ended (the pen is at rest) without installing it; the "
                        f"host keeps the old calibration: {exc}",)
            raise
        self._call(self._do_end_calibration, calibration)
        if calibration is None:
            return
        try:
            self._call(self._do_install_calibration, calibration)
        except SmpError as exc:
            stored = "may or may not have been stored on the pen (no reply)" \
                if isinstance(exc, LinkTimeout) else "was not stored on the pen"
            exc.args = (f"calibration ended (the pen is at rest), but calibration "
                        f"{calibration.calibration_id} {stored} and is not installed: the "
                        f"host keeps the old calibration: {exc}. Calibrate again, or read the "
                        "pen's table with read_calibration_table().",)
            raise

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
        self._expect_pen(FirmwareState.IDLE, confirmed=True)
        self._cal_held_since_s = self._cal_hold_ended = None

    def _check_actuator(self, actuator_mm: float) -> None:
        lim = self._ident.limits
        if not lim.depth_min_mm <= actuator_mm <= lim.depth_max_mm:
            raise EnvelopeError("calibration", [Violation(
                "actuator_mm", actuator_mm,
                lim.depth_max_mm if actuator_mm > lim.depth_max_mm else lim.depth_min_mm,
                "is outside the pen's actuator travel")])

    def _do_calibration_move(self, actuator_mm: float, epoch: int | None = None) -> Operation:
        self._require("calibration_move")
        self._check_actuator(actuator_mm)

        def moved() -> None:
            self._cal_actuator_mm = actuator_mm
            self._expect_pen(FirmwareState.ARMED, confirmed=True)
            self._cal_held_since_s = self.clock.now()  # the hold bound counts from here

        # Armed, never started: the needle is out at the point (protocol.md section 7) and
        # does not spin. The lease first, so an ARM is never left without one to lapse (a pen
        # armed with no live lease stays armed); the engine renews it while calibrating.
        speed = self._ident.limits.speed_min_hz
        op = Operation([self._calibration_setpoints(actuator_mm, speed),
                        LeaseRenew(self.lease_ms), Arm()], moved)
        granted: list[bool] = []

        def turn() -> SmpError | None:
            if (why := self._calibration_turn(epoch)) is None:
                if op.index == 0 and not granted and self.state is State.CALIBRATING:
                    granted.append(True)  # at its turn only, as a spin's: no stop is on its
                    self._lease_hold.clear()  # way (the turn said so), so its LEASE_RENEW
                    # grants the lease and the engine renews it (latched: refused, held)
                    self._expect_pen(FirmwareState.ARMED)  # or as it was, if refused
                return None
            if not op.step_sent:
                return StateError(f"the actuator was not moved to {actuator_mm} mm: {why}, "
                                  "and a stop is never withdrawn; nothing was sent to the pen.")
            self._cal_actuator_mm = None  # unanswered: the pen may or may not have it
            return StateError(
                f"the move to {actuator_mm} mm was sent but not confirmed, and is not resent: "
                f"{why}; the pen may or may not have applied it (the host no longer assumes "
                "any actuator position). Move the actuator again after calibrating again.")

        if (error := turn()) is not None:
            raise error
        op.check = turn
        return op

    def _check_calibration_hold(self, now_s: float) -> None:
        """Loop thread, every tick: the needle held out at one point longer than the bound
        (the run stuck at a prompt, or left): end the calibration here, as end_calibration
        would (the lease held at once, the stop next), so nothing renews it forever."""
        since = self._cal_held_since_s
        if (since is None or now_s - since < self.calibration_hold_max_s
                or self.state is not State.CALIBRATING or self._cal_pen != _HELD):
            return
        self._cal_held_since_s = None
        self._cal_hold_ended = (
            f"the needle was held out at actuator {self._cal_actuator_mm} mm for "
            f"{self.calibration_hold_max_s:g} s with no next step (a prompt left open, a gauge "
            "that never answered): the controller retracted it and ended the calibration; a "
            "reading given after that is not used. Calibrate again")
        self._eng.submit(self._do_end_calibration(None))
        self._log.warning("calibration hold bound reached; ending the calibration",
                          hold_max_s=self.calibration_hold_max_s)

    def _do_end_calibration(self, calibration: Calibration | None) -> Operation:
        self._require("end_calibration")  # first: refused, it blocks no start
        if calibration is not None:
            calibration.check_for(self._ident.serial, self.validity_now(), port=self.port_url)
        self._ask_stop()  # a spin or move still on its way never goes out after it
        self._lease_hold.set()  # a stop: renew nothing until the pen confirms it

        def done() -> None:
            self._fire("end_calibration", "calibration ended")  # first: raises if it no
            self._forget_setpoints()  # longer applies, before any side effect (R12A-05)
            self._lease_hold.clear()  # the stop confirmed; idle leases nothing
            self._cal_held_since_s = None

        def turn() -> SmpError | None:  # behind another end_calibration: nothing to stop
            if self.state is State.IDLE:
                return StateError("end_calibration no longer applies: the controller is "
                                  "already idle (the calibration was ended meanwhile); "
                                  "nothing was sent to the pen")
            return None

        return Operation([NeedleStop(), Retract(), Disarm()], done, stop=True, check=turn)

    def _do_install_calibration(self, calibration: Calibration) -> Operation | None:
        """After end_calibration's stop: store the table on the pen (where supported), then
        install it here; a write the pen did not confirm installs nothing."""
        self._require("set_calibration")

        def install() -> None:
            self._calibration = calibration
            self._forget_setpoints()  # actuator commands from the old calibration are stale
            self._rebound_zone()  # guard.py: never raises; logs a zone left with no depth

        if Capability.CALIBRATION_TABLE not in self._ident.capabilities:
            install()
            return None
        points = [(units.mm_to_um(a), units.mm_to_um(t)) for a, t in calibration.points[:8]]
        written_at_s = int(calibration.created_at.timestamp())
        return Operation([CalibrationWrite.from_points(points, written_at_s)], install)
