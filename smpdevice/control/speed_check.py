"""The calibrating state's speed check: the motor run off skin at a speed and the encoder's
mean read back, its stops (`stop_spin()`, a `spin_cancel()`, the pedal, end_calibration) and the
needle stop that ends it; and the turn check every calibration start (a move, a spin) passes.
A base of `CalibratingMixin` (calibrating.py), which re-exports `SPIN_UP_S`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from firmware_protocol import units
from firmware_protocol.codes import EventCode, FirmwareState, NackReason
from firmware_protocol.messages import (
    Arm,
    Disarm,
    Event,
    LeaseRenew,
    NeedleStart,
    NeedleStop,
    SetSetpoints,
)
from smpdevice import checks
from smpdevice.control.core import ControllerCore
from smpdevice.control.footswitch import PedalReleased
from smpdevice.control.needle_work import note_needle_work
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.spin import SpinCancel, SpinStopped
from smpdevice.control.states import SAFE, State, StateError
from smpdevice.envelope import EnvelopeError, Violation
from smpdevice.errors import SmpError
from smpdevice.link.engine import Operation
from smpdevice.link.wire import CommandRefused, LinkError, LinkTimeout

SPIN_UP_S = 0.3  # the motor reaches speed within this (tau 20 ms in the simulator)


class SpeedCheckMixin(ControllerCore):
    """stop_spin / spin_cancel / spin_stops / calibration_spin, and their frames."""

    _spin_stops = 0  # stop_spin() calls: a spin that sees it change stops the needle and ends
    # the pen states a settled report may show while calibrating (news.py reconciles on it):
    # idle at the begin and after a spin's stop, armed after a move, running in a spin
    _cal_pen: frozenset[FirmwareState] = frozenset({FirmwareState.IDLE})

    def stop_spin(self) -> None:
        """End a running speed check now, from any thread, without waiting: the spin stops the
        needle (NEEDLE_STOP, DISARM) and raises SpinStopped. A `pen.stop` while calibrating."""
        self._spin_stops += 1
        self._announce()

    def spin_cancel(self) -> SpinCancel:
        """A stop of one speed check only: pass it as `calibration_spin(..., cancel=)`."""
        return SpinCancel(self._announce)

    @property
    def spin_stops(self) -> int:
        """How many stop_spin() calls so far: read it when a spin is asked for (stops_before)."""
        return self._spin_stops

    def calibration_spin(self, speed_hz: float, duration_s: float = 1.0, *,
                         stops_before: int | None = None,
                         cancel: SpinCancel | None = None) -> float:
        """Run the motor (off skin) at `speed_hz`, return the mean encoder speed after settling.

        Footswitch `required`: a pedal release during the spin (the pen stops the needle) ends
        it with `PedalReleased`; the needle is never started again here by itself. A
        stop_spin() after `stops_before` (spin_stops when the spin was asked for; default: now)
        ends it with `SpinStopped`, or refuses it before it starts; so does `cancel.set()`
        (a `spin_cancel()`), for this spin only."""
        lim = self._ident.limits if self.identity is not None else None
        checks.finite_number("speed_hz", speed_hz, lim.speed_min_hz if lim else 0.0,
                             lim.speed_max_hz if lim else 1e4, unit="Hz")
        self._timeout_arg("duration_s", duration_s)
        rate_hz = self._engine.telemetry_hz if self._engine is not None else self.telemetry_hz
        if duration_s < 2 / rate_hz:  # no frame to average: it would blame the link
            raise checks.InvalidArgument(
                f"duration_s must be at least {2 / rate_hz:g} s, two telemetry frames at "
                f"{rate_hz:g} Hz, to measure a speed (got {duration_s!r})")
        checks.instance("cancel", cancel, (SpinCancel, type(None)), "a spin_cancel() or None")
        released = threading.Event()

        def on_event(e: Event) -> None:  # the pen's own word that the pedal stopped it
            if e.event == EventCode.FOOTSWITCH_RELEASED:
                released.set()
                self._announce()

        self.event_listeners.add(on_event)
        try:
            stops = self._spin_stops if stops_before is None else stops_before
            epoch = self._stop_epoch  # a stop asked from here on wins over this spin
            return self._spin(speed_hz, duration_s, released, (stops, epoch), cancel)
        finally:
            self.event_listeners.remove(on_event)

    def _spin(self, speed_hz: float, duration_s: float, released: threading.Event,
              asked: tuple[int, int], cancel: SpinCancel | None) -> float:
        stops, epoch = asked  # spin_stops and the stop epoch when it was asked for

        def halted() -> str | None:  # why this spin must end, or None
            if self._spin_stops != stops:
                return "a stop of the needle (pen.stop) came"
            return "its caller gave it up" if cancel is not None and cancel.is_set() else None

        if (why := halted()) is not None:
            raise SpinStopped(f"the speed check at {speed_hz:g} Hz was not started: {why} "
                              "after it was asked for. Run the speed check again.")
        if not self.__dict__.get("_spin_noted"):  # once per calibration, durable first
            note_needle_work(self, "a calibration's speed check")
            self.__dict__["_spin_noted"] = True
        try:
            self._call(self._do_calibration_spin, speed_hz, True, epoch, halted)
        except (CommandRefused, LinkError, SpinStopped) as exc:
            if isinstance(exc, SpinStopped) and not exc.part_sent:
                raise  # refused at its turn: nothing was sent
            if self.state is State.CALIBRATING:  # ARM, or the start, may have got through
                with contextlib.suppress(CommandRefused, StateError):  # this error is the news
                    self._end_spin(speed_hz)  # (refused, the lease stays held: pen stops)
            if not isinstance(exc, CommandRefused) or exc.reason is not NackReason.FOOTSWITCH_UP:
                raise
            raise PedalReleased(
                f"the footswitch (pedal) is not pressed: the pen refused to start the needle "
                f"for the speed check at {speed_hz:g} Hz (footswitch `required`). Press and "
                "hold the pedal for the whole speed check and calibrate again.") from None
        started_s = self.clock.now()  # NEEDLE_START was accepted: the pedal was down then
        samples: list[float] = []

        def collect(t: PenTelemetry) -> None:
            samples.append(t.speed_hz)

        def pedal_up() -> bool:  # the EVENT, or a report (its EVENT lost) with the pedal up
            if self.footswitch != "required":
                return False
            t = self.telemetry
            return released.is_set() or (
                t is not None and t.received_at_s > started_s and not t.footswitch)

        def stopped() -> bool:
            return self.state is not State.CALIBRATING or pedal_up() \
                or halted() is not None

        was_released = False
        try:
            self._wait_news(stopped, min(SPIN_UP_S, duration_s / 2))  # let it reach speed
            self._raise_if_faulted()
            self.add_inline_telemetry_reader(collect)  # as read: a slow UI listener lags
            if not pedal_up():
                self._wait_news(stopped, duration_s)  # measure (ends early on a fault, a stop)
            self._raise_if_faulted()
        finally:
            was_released = pedal_up()  # before the stop: a release after it is no matter
            self.remove_inline_telemetry_reader(collect)
            if self.state is State.CALIBRATING:
                self._end_spin(speed_hz)
        if (why := halted()) is not None:
            raise SpinStopped(
                f"the speed check at {speed_hz:g} Hz was stopped ({why} while it ran): the "
                "needle is stopped and nothing was measured. Run the speed check again.")
        if self.state is not State.CALIBRATING:  # end_calibration from another thread
            raise SpinStopped(
                f"the speed check at {speed_hz:g} Hz was cut short: the calibration was ended "
                f"(end_calibration) while it ran and the controller is {self.state.value}; "
                "the needle is stopped and nothing was measured. Begin calibration again.")
        if was_released:
            self._await_report_after(self.clock.now())  # the pen's own word: needle stopped
            raise PedalReleased(
                f"the footswitch (pedal) was released during the speed check at {speed_hz:g} "
                "Hz (footswitch `required`): the pen stopped the needle, and the calibration "
                "does not run it again by itself. Keep the pedal pressed for the whole speed "
                "check and calibrate again.")
        if not samples:
            raise LinkTimeout("no telemetry while the motor ran")
        return sum(samples) / len(samples)

    def _end_spin(self, speed_hz: float) -> None:
        """A speed check's stop (NEEDLE_STOP, DISARM) is a needle stop like stop_needle():
        renewal is held from now until the pen confirms it; unconfirmed, the controller
        latches a fault and renews nothing, so the pen stops the needle by itself. Asked,
        it wins over every spin or move still on its way (they are refused at their turn).
        The builder checks the state first, then asks the stop and holds renewal: a hold is
        never left set by a spin end that came after calibrating ended."""
        built: list[Operation] = []  # its steps: the reason names the one left unconfirmed
        try:
            self._call(self._do_calibration_spin, speed_hz, False, None, None, built)
        except LinkError as exc:
            step = built[0].step.TYPE.name if built else None
            self._latch_locally("fault_detected", self._unconfirmed_stop_reason(exc, step))
            raise

    def _expect_pen(self, *states: FirmwareState, confirmed: bool = False) -> None:
        """Loop thread: a calibration request on its way may leave the pen in `states` besides
        what it was in (added); `confirmed`: it did, the pen is in one of them now."""
        self._cal_pen = frozenset(states) if confirmed else self._cal_pen | frozenset(states)

    def _await_report_after(self, since_s: float, timeout_s: float = 1.0) -> None:
        """Wait (bounded) for a report made after `since_s`, so the record and the listeners
        see what the pen did after a stop, not only what the host asked."""
        def fresh() -> bool:
            t = self.telemetry
            return t is not None and t.received_at_s > since_s

        self._wait_news(lambda: fresh() or self.state is not State.CALIBRATING, timeout_s)

    # ---- in the loop thread

    def _calibration_setpoints(self, actuator_mm: float,
                               speed_hz: float) -> SetSetpoints:
        lim = self._ident.limits
        return SetSetpoints(
            depth_um=units.mm_to_um(actuator_mm),
            speed_centihz=units.hz_to_centihz(speed_hz),
            duty_permille=units.pct_to_permille(lim.duty_max_pct),
            period_us=units.ms_to_us(max(lim.period_min_ms, min(100.0, lim.period_max_ms))),
        )

    def _calibration_turn(self, epoch: int | None,
                          halted: Callable[[], str | None] | None = None) -> str | None:
        """Why a calibration start (a move, a spin asked at stop `epoch`) must not go out now,
        or None: asked when it is built and again before each of its steps, so a stop asked
        before its turn wins (as `_stop_epoch` makes a stop win over start_needle)."""
        state = self.state
        if state in SAFE:
            return None  # motion_refused says why (PenFault), as for any motion frame
        if state is not State.CALIBRATING:
            return f"the controller is no longer calibrating (it is {state.value})"
        if epoch is not None and epoch != self._stop_epoch:
            return "a stop (end_calibration, a spin's stop) was asked after it"
        if any(op.stop for op in self._eng.ops):
            return "a stop (end_calibration, a spin's stop) is still on its way"
        return None if halted is None else halted()

    def _do_calibration_spin(self, speed_hz: float, on: bool, epoch: int | None = None,
                             halted: Callable[[], str | None] | None = None,
                             built: list[Operation] | None = None) -> Operation:
        self._require("calibration_spin")  # first: refused, it asks no stop
        lim = self._ident.limits
        if on and not lim.speed_min_hz <= speed_hz <= lim.speed_max_hz:
            raise EnvelopeError("calibration", [Violation(
                "speed_hz", speed_hz, lim.speed_max_hz if speed_hz > lim.speed_max_hz
                else lim.speed_min_hz, "is outside the pen's speed range")])
        if not on:  # a spin or move still on its way loses at its turn; renew nothing until
            self._ask_stop()  # the pen confirms (under the engine's lock: no grant between)
            self._lease_hold.set()
            self._expect_pen(FirmwareState.IDLE)
            stop = Operation([NeedleStop(), Disarm()], self._spin_ended, stop=True)
            if built is not None:
                built.append(stop)
            return stop
        actuator = self._cal_actuator_mm if self._cal_actuator_mm is not None \
            else lim.depth_min_mm
        spinning = (FirmwareState.ARMED, FirmwareState.RUNNING)  # armed: the pedal let go
        op = Operation([self._calibration_setpoints(actuator, speed_hz),
                        *self._footswitch_steps(), LeaseRenew(self.lease_ms), Arm(),
                        NeedleStart()], lambda: self._expect_pen(*spinning, confirmed=True))

        def refusal() -> SpinStopped | None:
            why = self._calibration_turn(epoch, halted)
            if why is None:
                return None
            sent = op.index > 0 or op.step_sent  # refused at a resend: its frame went out
            error = SpinStopped(f"the speed check at {speed_hz:g} Hz was not started: {why}, "
                                "and a stop is never withdrawn" + (
                                    "; its first frames were sent, so the needle is stopped "
                                    "to be sure" if sent else "") + ". Run it again.")
            error.part_sent = sent
            return error

        def turn() -> SmpError | None:
            error = refusal()
            if error is None and op.index == 0 and not granted:  # the lease is granted at
                granted.append(True)  # its turn only: never while a stop's hold is pending
                self._grant_lease()
                self._expect_pen(*spinning)
            return error

        granted: list[bool] = []
        if (error := refusal()) is not None:
            raise error
        op.check = turn
        return op

    def _spin_ended(self) -> None:
        """The pen confirmed a speed check's stop: renewals resume (a disarmed pen needs none,
        but the next spin grants a lease of its own anyway)."""
        self._expect_pen(FirmwareState.IDLE, confirmed=True)
        if self.state is State.CALIBRATING:
            self._lease_hold.clear()
