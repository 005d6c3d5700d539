"""What the pen says and what the engine asks (a mixin of `PenController`): the loop's periodic
work (pass time, reconciliation, telemetry age), link loss, and the pen's telemetry, events and
refusals brought into the state machine through `RECONCILE`.

The footswitch (mode `required`): the pen stops the needle itself when the pedal is released
and says so with EVENT FOOTSWITCH_RELEASED; the controller follows it to `armed` (the pass ends
`footswitch_released`), never restarting: the next start is an explicit request.

A pen report is judged only once it shows the pen after every request that could change its
state (`RequestEngine.settled`); link silence is judged on telemetry, not on any byte (a pen that
still ACKs renewals but reports nothing is blind to the host: review r04).
"""

from __future__ import annotations

import contextlib
from enum import IntEnum
from typing import TypeVar

from firmware_protocol import Message
from firmware_protocol.codes import EventCode, Fault, FirmwareState, NackReason
from firmware_protocol.messages import Event, Nack, NeedleStop, SetFootswitch, Telemetry
from smpdevice.control import footswitch as fs
from smpdevice.control.impressions import PLANNED_END_GRACE_S, ImpressionsPlanMixin
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import (
    HOST_ESTOP,
    LEASED,
    OFFLINE,
    SAFE,
    FaultInfo,
    PenFault,
    State,
    reconcile,
)
from smpdevice.envelope import ZoneEnvelope
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkError

_E = TypeVar("_E", bound=IntEnum)
# PLANNED_END_GRACE_S lives in impressions.py; imported here, where timed passes read it
# the fields of the pen's reports that must hold one of a catalogue's codes
_CODED: dict[type[Message], tuple[tuple[str, type[IntEnum]], ...]] = {
    Telemetry: (("state", FirmwareState),),
    Event: (("event", EventCode), ("state", FirmwareState)),
}


# the names the "pen event" log line gives, looked up by value (an enum call per field cost
# about 8 Python calls on the E-stop's path: its EVENT is handled before estop() returns)
_EVENT_NAMES = {int(code): code.name for code in EventCode}
_STATE_NAMES = {int(state): state.name for state in FirmwareState}
# BOOTED too: a pen that rebooted under a session says FAULT, POWER_RESET in it; acted on at
# once, as a NACK BOOTING is, so a stop queued behind it never reads as a pass's end (review 19)
_LATCHED = frozenset({int(EventCode.FAULT_LATCHED), int(EventCode.ESTOP_LATCHED),
                      int(EventCode.BOOTED)})
_FAULT_NAMES: dict[int, list[str]] = {}  # Fault(value).names by value, filled as seen


def _planned_end_s(run_for_s: float | None, zone: ZoneEnvelope | None) -> float | None:
    """When the controller stops a timed pass its caller has not stopped: its plan + grace,
    but never past its zone's max_pass_s (a pass planned at the limit ends there, as
    planned); None for an untimed pass, or one planned past the limit (the limit stops it)."""
    if run_for_s is None:
        return None
    if zone is None:
        return run_for_s + PLANNED_END_GRACE_S
    if run_for_s > zone.max_pass_s:
        return None
    return min(run_for_s + PLANNED_END_GRACE_S, zone.max_pass_s)


def _fault_names(value: int) -> list[str]:
    """`Fault(value).names` (a new list), cached: an IntFlag call costs 3 Python calls."""
    names = _FAULT_NAMES.get(value)
    if names is None:
        names = Fault(value).names
        if len(_FAULT_NAMES) < 256:  # bounded: a hostile pen may send every 16-bit value
            _FAULT_NAMES[value] = names
    return list(names)


def _defined(enum: type[_E], value: int) -> _E | None:
    """`value` as a member of `enum`, or None when the catalogue does not define it."""
    try:
        return enum(value)
    except ValueError:
        return None


def undefined_code(message: Message) -> str | None:
    """What in a TELEMETRY or EVENT is not in the catalogue (e.g. `TELEMETRY state 200`)."""
    for name, enum in _CODED.get(type(message), ()):
        value = getattr(message, name)
        if value not in enum._value2member_map_:  # a dict lookup: this runs on every report
            return f"{type(message).__name__.upper()} {name} {value} (no {enum.__name__})"
    return None


class PenNewsMixin(ImpressionsPlanMixin):
    """on_tick / on_lost / on_lease_refused (EngineHost) and the pen's news."""

    _undefined_seen: frozenset[str] = frozenset()  # undefined codes already logged

    # True once the pen stopped the needle because the pedal was released (mode `required`),
    # until the next start: the pass that ended so ends `footswitch_released`.
    stopped_by_footswitch: bool = False
    _pen_rebooted: bool = False  # requests.py: a clear asks the telemetry rate again
    _boots_seen: int = 0  # EVENT BOOTED handled by the loop, in every state (connection.py)
    _report_at_boot: PenTelemetry | None = None  # the last report before the last BOOTED

    # ---- the footswitch

    def _check_footswitch(self) -> None:
        """At the handshake: `required` on a pen without a footswitch is refused."""
        ident = self._ident
        fs.check_capability(self.footswitch, ident.capabilities, ident.serial)

    def _footswitch_steps(self) -> list[Message]:
        """Sent before every ARM (and calibration spin): the pen's mode is OFF after a reboot
        and may be another host's, so it is set each time, never assumed."""
        return [SetFootswitch(int(fs.wire_mode(self.footswitch)))]

    def _on_footswitch_released(self, reason: str) -> None:
        """Loop thread: the pen stopped the needle because the pedal went up. Follow it to
        `armed` (the pen's state); nothing restarts until an explicit start."""
        with self._fsm_lock:  # an E-stop from another thread cannot slip in between
            if self.state is not State.RUNNING:
                return  # already stopped (a stop request crossed it), or latched meanwhile
            self.stopped_by_footswitch = True
            self.running_since_s = None
            self._eng.mark_reports_stale()  # reports from before the stop are stale
            self._fire("stop", reason)

    # ---- what the engine asks (EngineHost), all in the loop thread

    def on_tick(self, now_s: float) -> None:
        # Safety first, logging last: a log line that fails (stderr gone) must never cost a
        # stop (review 11, F7; logs.py makes a failed line raise nothing besides).
        zone, engine = self._zone, self._eng
        if self.state is State.RUNNING and self.running_since_s:
            ran_s = now_s - self.running_since_s
            planned_end_s = _planned_end_s(self.run_for_s, zone)
            if (((planned_end_s is not None and ran_s >= planned_end_s)
                    or self._impressions_reached(now_s)) and self.stopped_at_planned_end is None):
                self._stop_at_planned_end(urgent=zone is not None
                                          and ran_s >= zone.max_pass_s)
            elif zone is not None and ran_s > zone.max_pass_s and not any(
                    op.stop for op in engine.ops):
                self._stop_over_time(zone.max_pass_s)
        else:
            self._drop_ended_impressions_plan()
            self._check_calibration_hold(now_s)  # the needle out at a point: bounded
        t = self.telemetry
        if t is not None and engine.settled(t.received_at_s):
            self._on_pen_state(t)
        self._check_telemetry_age(now_s)
        self._log_fault_when_due(now_s)

    def _check_telemetry_age(self, now_s: float) -> None:
        """Link silence is judged on telemetry, not on any byte: a pen that still ACKs lease
        renewals but reports nothing is blind to us (review r04). While the lease is held,
        telemetry older than the silence limit stops renewal and latches a fault."""
        t = self.telemetry
        if t is None or self.state not in LEASED:
            return
        age_s, limit_s = now_s - t.received_at_s, self._eng.silence_limit_s()
        if age_s <= limit_s:
            return
        # No byte at all: a lost link, which the engine judges right after this, in the same
        # tick (judged here as a fault first, a pass's outcome hung on a thread race: replay)
        link = self.link
        if link is not None and now_s - link.last_rx_s > limit_s:
            return
        self._stop_and_hold_lease(
            f"the pen's telemetry stopped ({age_s:.2f} s without a report) while it still "
            f"answers; the host stopped renewing the lease, so the pen stops the needle by "
            f"itself within {self.lease_ms} ms. Check the pen and its cable.")

    def _stop_and_hold_lease(self, why: str) -> None:
        """Loop thread: a pen whose reports cannot be trusted: stop renewing its lease, send
        NEEDLE_STOP, and go safe with `why` as the fault."""
        self._lease_hold.set()
        with contextlib.suppress(SmpError):
            if self.link is not None:
                self.link.send(NeedleStop())
        self.last_fault = FaultInfo(why)
        self._enter_safe("fault_detected")

    def on_lease_refused(self, nack: Nack) -> None:
        """The pen NACKed a lease renewal (FAULT_LATCHED, ESTOP_LATCHED ...): it has stopped
        on its own; treat it as the latch it reports, even if no telemetry says so."""
        if self.state not in LEASED:
            return
        reason = _defined(NackReason, nack.reason)
        faults = self.telemetry.faults if self.telemetry is not None else Fault(0)
        what = (f"the pen refused the lease renewal: {reason.name} ({reason.description})"
                if reason is not None else "the pen refused the lease renewal with reason "
                f"code {nack.reason}, which this host's catalogue does not define")
        if reason is NackReason.BOOTING:  # it rebooted under us: it comes up with POWER_RESET
            self._latch_reboot(what)
            return
        self.last_fault = FaultInfo(what, faults)
        trigger = "estop_latched" if reason is NackReason.ESTOP_LATCHED else "fault_detected"
        self._enter_safe(trigger)

    def _stop_at_planned_end(self, urgent: bool = False) -> None:
        """The pass ran its planned length and its caller has not stopped it (its thread held
        up: a slow display, a lock): stop it here, as the caller would have (review 15: a 1 s
        pass ran 2.6 s). A plain stop: the pass ended as planned. `urgent`: it is also at its
        zone's max_pass_s, so the stop goes as the time limit's does (nothing waits)."""
        self.stopped_at_planned_end = self.record_now()  # when it ended, for its record
        if urgent and self._zone is not None:
            self._stop_over_time(self._zone.max_pass_s)
            return
        self._eng.submit(self._do_stop())
        self._log.info("pass reached its planned end; the controller stops it",
                       run_for_s=self.run_for_s)

    def _stop_over_time(self, limit_s: float) -> None:
        """The pass reached max_pass_s: stop now, whatever else is queued (review r03). Lease
        renewal stops at once; the queued requests fail; the stop goes on the wire next.
        The log line comes after the stop is queued: it may fail (stderr gone), the stop not."""
        self._lease_hold.set()
        self._eng.fail_all(PenFault(
            f"the pass reached its time limit ({limit_s} s) and the needle is being stopped; "
            "this request was cancelled (if it was already on its way, the pen may have "
            "applied it). Start a new pass to go on."))
        self._eng.submit(self._do_stop())
        self._log.warning("pass time limit reached; stopping", limit_s=limit_s)

    def on_lost(self, reason: str, silence: bool = False) -> None:
        if self.state is State.DISCONNECTED or (silence and self.state is State.CONNECTING):
            return  # the handshake's requests time out by themselves
        self.running_since_s = None
        self._forget_setpoints()
        if self._estop_hold:  # the E-stop stays latched and visible (review r12)
            self.last_fault = FaultInfo(f"E-stop latched here (not cleared); then link lost: "
                                        f"{reason}")
        else:
            self.last_fault = FaultInfo(f"link lost: {reason}")
        history = []
        if self.link is not None:
            history = self.link.format_history()
            self.link.close(join=False)  # the loop never waits for the reader thread
        self._fire("link_lost", reason)
        self._eng.fail_all(LinkError(f"link lost: {reason}"))
        self._eng.cancel_estop()
        self._eng.stopping()
        self._log.warning("link lost", reason=reason, last_frames=history)  # after: may fail

    # ---- pen-side news

    def _on_pen_message(self, message: Message) -> None:
        """Reader thread: telemetry fan-out, and state news for the loop."""
        undefined = undefined_code(message)
        if undefined is not None:
            self._on_undefined(undefined)
            return
        if isinstance(message, Telemetry):
            t = PenTelemetry.from_message(message, self._calibration, self.clock.now())
            previous = self.telemetry
            link = self.link  # its place among the frames: the reader's link, never None here
            self._report = (t, link.stats.rx_frames if link is not None else 0)
            self._impressions_base(t)
            self._telemetry_counters.notify(t)  # the host's own counts: never queued, never dropped
            self.telemetry_listeners.notify(t)
            self._announce()
            # a sequence started again; not one whose reboot is known (a NACK BOOTING, a
            # BOOTED: its last report noted), seen when a rate 0 pen is asked to report again
            rebooted = (previous is not None and t.telemetry_seq < previous.telemetry_seq
                        and previous is not self._report_at_boot)
            if rebooted:
                self._pen_rebooted = True  # its EVENT BOOTED may be lost
            if rebooted and self._engine is not None:
                self._eng.post(self._on_reboot_report, t)
            elif (previous is None or t.state is not previous.state
                    or t.faults != previous.faults) and self._engine is not None:
                self._eng.post(self._on_pen_state, t)
        elif isinstance(message, Event):
            self.event_listeners.notify(message)
            engine = self._engine
            if message.event == EventCode.FOOTSWITCH_RELEASED and engine is not None:
                engine.post(self._on_footswitch_released,
                            "footswitch released: the pen stopped the needle")
            if message.event == EventCode.BOOTED:
                self._report_at_boot = self.telemetry  # stale: the handshake judges it not
                if self.state not in OFFLINE:
                    # its rate is its boot default now: known here, before a clear queued
                    # behind this news is sent (requests._do_clear asks the rate again)
                    self._pen_rebooted = True
            if message.event in _LATCHED and engine is not None:
                engine.post(self._on_pen_latched, message)  # no telemetry may follow
            self._log.info("pen event", pen_event=_EVENT_NAMES[message.event],
                           pen_state=_STATE_NAMES[message.state],
                           faults=_fault_names(message.faults))

    def _on_undefined(self, what: str) -> None:
        """Reader thread: a report with a code outside the catalogue (a hostile pen, or a
        mismatched one the handshake missed) is not used. Logged once per value (it used to
        log a traceback per frame); while the lease is held the needle is stopped."""
        if self._engine is not None and self.state in LEASED:  # the stop first, then the log
            self._eng.post(self._stop_on_undefined, what)
        if what not in self._undefined_seen:
            self._undefined_seen = self._undefined_seen | {what}
            self._log.warning("pen report with an undefined code ignored", undefined=what)

    def _stop_on_undefined(self, what: str) -> None:
        """Loop thread: as on silent telemetry, stop renewing the lease and go safe."""
        if self.state not in LEASED:
            return
        self._stop_and_hold_lease(
            f"the pen reported {what}, a code this host's message catalogue does not define: "
            f"its reports cannot be trusted, so the host stopped the needle and the lease "
            f"(the pen stops by itself within {self.lease_ms} ms). Check the pen's firmware.")

    def _on_pen_latched(self, event: Event) -> None:
        """An EVENT FAULT_LATCHED / ESTOP_LATCHED / BOOTED: reconcile on it as on a report (the rows
        that need a settled report do not apply to an event)."""
        if event.event == EventCode.BOOTED:
            with self._fsm_lock:  # counted and judged at once: the handshake ends under it
                self._boots_seen += 1
                state = self.state
            self._announce()  # a handshake waiting for its first report looks again
            if state not in SAFE | OFFLINE and event.state != FirmwareState.ESTOP:
                # named as the reboot it is, as a NACK BOOTING is, whatever state it came up
                # in: never "a fault" to look for a jam behind (review 20)
                self._latch_reboot(f"it reported BOOTED, state "
                                   f"{_STATE_NAMES.get(event.state, event.state)}")
                return
        self._reconcile(FirmwareState(event.state), Fault(event.faults), settled=False)

    def _on_reboot_report(self, t: PenTelemetry) -> None:
        """A report whose sequence started again: the pen rebooted, its EVENT BOOTED lost or
        not yet read (into idle too: a cold start). Named the reboot it is (review 20)."""
        self._on_pen_state(t, f"its reports started again at {t.telemetry_seq}")

    def _on_pen_state(self, t: PenTelemetry, restarted: str | None = None) -> None:
        """Bring the controller in line with what the pen reports (loop thread): `RECONCILE`.
        A report of a reboot (POWER_RESET, or `restarted`) is named the reboot it is, as the
        EVENT BOOTED and a NACK BOOTING are, whichever of them the loop takes first (review 20:
        a report seen first was "a fault" when the event was lost)."""
        rebooted = restarted or ("it reports POWER_RESET" if Fault.POWER_RESET in t.faults
                                 else None)
        if rebooted is not None and t.state is not FirmwareState.ESTOP:
            with self._fsm_lock:
                state = self.state
            if state not in SAFE | OFFLINE:
                self._latch_reboot(f"{rebooted}, state {t.state.name}")
                return
        self._reconcile(t.state, t.faults, self._eng.settled(t.received_at_s))

    def _reconcile(self, pen_state: FirmwareState, faults: Fault, settled: bool) -> None:
        state = self.state
        engine = self._eng
        t = self.telemetry
        if (state is State.RUNNING and pen_state is FirmwareState.ARMED and not faults
                and settled and self.footswitch == "required" and t is not None):
            # Its EVENT was lost: the report (armed, no fault, nothing the host asked) says
            # the same. With the pedal required only a release stops a needle so; the pedal
            # may be down again already (a slip shorter than a report's period).
            self._on_footswitch_released(
                "footswitch released: the pen stopped the needle (seen in its report)"
                if not t.footswitch else "footswitch released: the pen stopped the needle with "
                "no fault and the pedal is down again (a short slip; its event was lost)")
            return
        row = reconcile(pen_state, faults, state, settled,
                        self._cal_pen if state is State.CALIBRATING else None)
        if row is None:
            return
        reason = row.reason.format(pen_state=pen_state.name, expected=" or ".join(
            sorted(s.name for s in self._cal_pen)))
        if row.action == "estop_latched" and self._estop_hold:
            # this host's own E-stop: its ESTOP is written before estop() latches here, and
            # the pen's answer may reach the loop first (a loaded machine): named as asked
            reason = HOST_ESTOP
        if row.action == "stop":
            with contextlib.suppress(SmpError):
                if self.link is not None:
                    self.link.send(NeedleStop())
            engine.mark_reports_stale()  # reports from before the stop are stale
            if state in SAFE:
                return
            trigger = "fault_detected"
        else:
            trigger = row.action
        self.last_fault = FaultInfo(reason, faults if row.carry_faults else Fault(0))
        self._enter_safe(trigger)
