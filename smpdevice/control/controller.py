"""The controller: a state machine that drives the pen inside the safety envelope.

Threads and who owns what:
- the **engine's loop thread** (`smpdevice.link.engine`) owns the state machine and the
  conversation with the pen. Every public method posts a request to it and waits for the answer,
  so the controller is safe to call from several threads. The loop also renews the pen's
  dead-man lease, so a hung loop stops renewing and the pen stops the needle itself;
- the **reader thread** (in `Link`) decodes frames and hands replies, telemetry and events over;
- **safety stops** are the exception: `estop()` (and a stop's lease hold) act in the caller's
  thread at once, bypassing every queue (grbl's real-time commands), then tell the loop.

Nothing resumes by itself: after a fault, an E-stop, a reboot of the pen or a reconnect the
controller is in `fault`, `estop` or `idle`, and the needle starts only on an explicit request.
The policy (which request in which state, what to do when the pen disagrees) is the tables of
`smpdevice.control.states`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog

from firmware_protocol import Message
from firmware_protocol.codes import EventCode, Fault, FirmwareState, NackReason
from firmware_protocol.messages import (
    Disarm,
    Event,
    Nack,
    NeedleStop,
    Telemetry,
)
from smpdevice import checks
from smpdevice.control.calibrating import SETTLE_TOLERANCE_MM, CalibratingMixin
from smpdevice.control.calibration import Calibration
from smpdevice.control.connection import ConnectionMixin
from smpdevice.control.pen import PenIdentity, PenTelemetry, Setpoints
from smpdevice.control.requests import RequestsMixin
from smpdevice.control.safety import SafetyMixin
from smpdevice.control.states import (
    LEASED,
    OFFLINE,
    SAFE,
    FaultInfo,
    PenFault,
    State,
    StateError,
    build_machine,
    reconcile,
)
from smpdevice.envelope import ZoneEnvelope
from smpdevice.errors import SmpError
from smpdevice.link.clock import timebase_for
from smpdevice.link.engine import RequestEngine
from smpdevice.link.notifier import Notifier, QueuedNotifier
from smpdevice.link.wire import (
    Link,
    LinkError,
    Tracked,
)
from smpdevice.logs import ensure_configured

log = structlog.get_logger("smpdevice.control")


class _Fsm:
    """The model the `transitions` machine drives (kept apart from the public API)."""

    state: str

    def __init__(self, owner: PenController) -> None:
        self._owner = owner

    def has_calibration(self) -> bool:
        return not self._owner._arm_blockers(only="calibration")

    def has_zone(self) -> bool:
        return not self._owner._arm_blockers(only="zone")

    def has_setpoints(self) -> bool:
        return not self._owner._arm_blockers(only="setpoints")


class PenController(ConnectionMixin, SafetyMixin, RequestsMixin, CalibratingMixin):
    """Drive one pen. Use `PenController.connect(port)`, best as a context manager:

        with PenController.connect("pensim://", calibration=cal) as pen:
            pen.set_zone("crown")
            pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
            pen.arm()
            pen.start_needle()
            ...
            pen.stop_needle()
    """

    def _setup(self) -> None:
        ensure_configured()
        self.identity: PenIdentity | None = None
        self.link: Link | None = None
        self.last_fault: FaultInfo | None = None
        self.telemetry: PenTelemetry | None = None
        self.zone_name: str | None = None
        self._zone: ZoneEnvelope | None = None
        self.setpoints: Setpoints | None = None
        self.running_since_s: float | None = None
        self._actuator_cmd_mm: float | None = None
        self._fsm = _Fsm(self)
        self._machine = build_machine(self._fsm)
        self._engine: RequestEngine | None = None
        # telemetry and pen events reach listeners on their own threads (bounded, drop-oldest):
        # a blocking listener never stalls the reader or the loop (review r10)
        self.telemetry_listeners: Notifier[[PenTelemetry]] = QueuedNotifier(
            "telemetry", timebase=timebase_for(self.clock))
        self.state_listeners: Notifier[[State, State, str]] = Notifier("state")
        self.event_listeners: Notifier[[Event]] = QueuedNotifier(
            "event", timebase=timebase_for(self.clock))
        self._log = log
        # notified on every telemetry frame and state change; waits on it are on self.clock
        self._news = timebase_for(self.clock).condition()
        # Safety stops act in the caller's thread, never waiting for the loop or the link:
        # the state changes under this lock, and the two holds below stop lease renewal at once.
        self._fsm_lock = threading.RLock()
        self._lease_hold = threading.Event()  # a stop is under way: renew nothing until it ends
        self._estop_hold = False  # an E-stop is latched here: renew nothing until cleared
        self._estop_lock = threading.Lock()  # one shared ESTOP tracker for concurrent estop()
        self._estop_tracked: Tracked | None = None
        self._fault_log: tuple[float, str, list] | None = None

    def __enter__(self) -> PenController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- what only exists while connected (loop-side code runs only then)

    @property
    def _eng(self) -> RequestEngine:
        engine = self._engine
        if engine is None:
            raise StateError("not connected to a pen. Connect or reconnect first.")
        return engine

    @property
    def _ident(self) -> PenIdentity:
        identity = self.identity
        if identity is None:
            raise StateError("not connected to a pen. Connect or reconnect first.")
        return identity

    # ================================================================== public API

    @property
    def state(self) -> State:
        return State(self._fsm.state)

    @property
    def simulated(self) -> bool:
        """True when this is no real pen: a `pensim://` port, or a pen whose IDENTIFY says
        SIMULATED (a simulator over a pty or TCP). Records made with it carry the flag."""
        from firmware_protocol.codes import Capability

        if self.port_url.strip().lower().startswith("pensim://"):
            return True
        return self.identity is not None and Capability.SIMULATED in self._ident.capabilities

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    @property
    def zone(self) -> ZoneEnvelope | None:
        """The active zone's envelope, narrowed to the pen's limits."""
        return self._zone

    def add_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        """Called with every telemetry frame in physical units, on the controller's telemetry
        thread (never the reader's: a slow listener only drops old frames, counted in
        `telemetry_listeners.dropped`)."""
        self.telemetry_listeners.add(listener)

    def remove_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        self.telemetry_listeners.remove(listener)

    def add_state_listener(self, listener: Callable[[State, State, str], None]) -> None:
        """Called with (old state, new state, reason) after every state change."""
        self.state_listeners.add(listener)

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        """Called with every EVENT the pen reports."""
        self.event_listeners.add(listener)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Use `calibration` from now on (idle only). None or another pen's is refused."""
        checks.instance("calibration", calibration, (Calibration, type(None)), "a Calibration")
        self._call(self._do_set_calibration, calibration)

    def set_zone(self, zone: str) -> ZoneEnvelope:
        """Select the zone whose envelope every setpoint is checked against (not while running)."""
        checks.text("zone", zone, max_len=64)
        return self._call(self._do_set_zone, zone)

    def set_setpoints(
        self, *, depth_mm: float, speed_hz: float, duty_pct: float, period_ms: float
    ) -> Setpoints:
        """Check against the zone's envelope, convert through the calibration, send."""
        setpoints = Setpoints(*(self._setpoint_number(name, value) for name, value in (
            ("depth_mm", depth_mm), ("speed_hz", speed_hz), ("duty_pct", duty_pct),
            ("period_ms", period_ms))))
        return self._call(self._do_set_setpoints, setpoints)

    def arm(self) -> None:
        """idle -> armed. Needs a valid calibration, a zone and setpoints."""
        self._call(self._do_arm)

    def disarm(self) -> None:
        self._call(self._do_simple, "disarm", [Disarm()])

    def start_needle(self, *, settle_timeout_s: float = 1.0) -> None:
        """armed -> running (a pass begins), once the needle stands at the set depth.

        Starting while the depth actuator still travels would put the first dots too shallow
        or too deep, so this waits (up to `settle_timeout_s`) for the measured depth to reach
        the command first.
        """
        self._timeout_arg("settle_timeout_s", settle_timeout_s)
        if self.state is State.ARMED:
            if self.setpoints is None:
                raise StateError("no setpoints since the last retract, fault or calibration: "
                                 "call set_setpoints() first")
            self._wait_depth_settled(settle_timeout_s)
        self._call(self._do_start)

    def _wait_depth_settled(self, timeout_s: float) -> None:
        target_mm = self._actuator_cmd_mm

        def settled() -> bool:
            t = self.telemetry
            return (t is not None and target_mm is not None
                    and abs(t.actuator_cmd_mm - target_mm) < 0.0005  # the pen has the command
                    and abs(t.actuator_mm - target_mm) <= SETTLE_TOLERANCE_MM)

        if not self._wait_news(lambda: settled() or self.state in SAFE | OFFLINE, timeout_s):
            t = self.telemetry
            where = f"{t.actuator_mm:.3f} mm" if t else "unknown"
            raise SmpError(
                f"the depth actuator did not reach {target_mm} mm within {timeout_s} s "
                f"(it is at {where}); the needle was not started. Check the pen."
            )
        self._raise_if_faulted()

    def retract(self) -> None:
        """Stop the needle and pull it back to actuator 0."""
        self._call(self._do_retract)

    def clear_faults(self) -> None:
        """fault/estop -> idle, once the cause is gone. A technician's explicit act."""
        self._call(self._do_clear)

    def wait_for_state(self, *states: State, timeout_s: float = 2.0) -> State:
        """Wait until the controller is in one of `states` (for scripts and tests)."""
        checks.finite_number("timeout_s", timeout_s, 0.0, 86400.0, unit="s", lo_open=True)
        for state in states:
            checks.instance("state", state, State, "a State")
        if not self._wait_news(lambda: self.state in states, timeout_s):
            raise SmpError(f"waited {timeout_s} s for {', '.join(s.value for s in states)}; "
                           f"still {self.state.value}")
        return self.state

    def _wait_news(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait (on telemetry and state news, never polling) until `predicate()`."""
        with self._news:
            return self._news.wait_for(predicate, timeout_s)

    def pause(self, duration_s: float) -> None:
        """Let `duration_s` pass on the controller's clock (virtual in tests): for loops that
        supervise a pass, instead of time.sleep."""
        checks.finite_number("duration_s", duration_s, 0.0, 86400.0, unit="s")
        self._wait_news(lambda: False, duration_s)

    def _announce(self) -> None:
        with self._news:
            self._news.notify_all()

    # ================================================================== loop-side work

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in the loop thread and wait for its result (or error)."""
        engine = self._engine
        if engine is None or not engine.alive:
            if self.state is State.DISCONNECTED:
                reason = f": {self.link.lost}" if self.link and self.link.lost else ""
                raise StateError(f"not connected to a pen{reason}. Connect or reconnect first.")
            raise StateError("the controller loop is not running")
        if engine.in_loop():
            raise StateError(
                "controller methods cannot be called from a listener (it runs in the "
                "controller's own thread); hand the work to another thread"
            )
        return engine.call(fn, *args)

    # ---- what the engine asks (EngineHost), all in the loop thread

    def on_tick(self, now_s: float) -> None:
        self._log_fault_when_due(now_s)
        zone, engine = self._zone, self._eng
        if (self.state is State.RUNNING and zone is not None and self.running_since_s
                and now_s - self.running_since_s > zone.max_pass_s
                and not any(op.stop for op in engine.ops)):
            self._stop_over_time(zone.max_pass_s)
        t = self.telemetry
        if t is not None and engine.settled(t.received_at_s):
            self._on_pen_state(t)
        self._check_telemetry_age(now_s)

    def _check_telemetry_age(self, now_s: float) -> None:
        """Link silence is judged on telemetry, not on any byte: a pen that still ACKs lease
        renewals but reports nothing is blind to us (review r04). While the lease is held,
        telemetry older than the silence limit stops renewal and latches a fault."""
        t = self.telemetry
        if t is None or self.state not in LEASED:
            return
        age_s = now_s - t.received_at_s
        if age_s <= self._eng.silence_limit_s():
            return
        self._lease_hold.set()
        with contextlib.suppress(SmpError):
            if self.link is not None:
                self.link.send(NeedleStop())
        self.last_fault = FaultInfo(
            f"the pen's telemetry stopped ({age_s:.2f} s without a report) while it still "
            f"answers; the host stopped renewing the lease, so the pen stops the needle by "
            f"itself within {self.lease_ms} ms. Check the pen and its cable.")
        self._enter_safe("fault_detected")

    def on_lease_refused(self, nack: Nack) -> None:
        """The pen NACKed a lease renewal (FAULT_LATCHED, ESTOP_LATCHED ...): it has stopped
        on its own; treat it as the latch it reports, even if no telemetry says so."""
        if self.state not in LEASED:
            return
        reason = NackReason(nack.reason)
        faults = self.telemetry.faults if self.telemetry is not None else Fault(0)
        what = f"the pen refused the lease renewal: {reason.name} ({reason.description})"
        if reason is NackReason.BOOTING:  # it rebooted under us: it comes up with POWER_RESET
            faults |= Fault.POWER_RESET
            what = f"the pen rebooted ({what})"
        self.last_fault = FaultInfo(what, faults)
        trigger = "estop_latched" if reason is NackReason.ESTOP_LATCHED else "fault_detected"
        self._enter_safe(trigger)

    def _stop_over_time(self, limit_s: float) -> None:
        """The pass reached max_pass_s: stop now, whatever else is queued (review r03). Lease
        renewal stops at once; the queued requests fail; the stop goes on the wire next."""
        self._log.warning("pass time limit reached; stopping", limit_s=limit_s)
        self._lease_hold.set()
        self._eng.fail_all(PenFault(
            f"the pass reached its time limit ({limit_s} s) and the needle is being stopped; "
            "this request was cancelled (if it was already on its way, the pen may have "
            "applied it). Start a new pass to go on."))
        self._eng.submit(self._do_stop())

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
        self._log.warning("link lost", reason=reason, last_frames=history)
        self._eng.fail_all(LinkError(f"link lost: {reason}"))
        self._eng.cancel_estop()
        self._eng.stopping()

    # ---- pen-side news

    def _on_pen_message(self, message: Message) -> None:
        """Reader thread: telemetry fan-out, and state news for the loop."""
        if isinstance(message, Telemetry):
            t = PenTelemetry.from_message(message, self._calibration, self.clock.now())
            previous = self.telemetry
            self.telemetry = t
            self.telemetry_listeners.notify(t)
            self._announce()
            rebooted = previous is not None and t.telemetry_seq < previous.telemetry_seq
            if (previous is None or rebooted or t.state is not previous.state
                    or t.faults != previous.faults) and self._engine is not None:
                self._eng.post(self._on_pen_state, t)
        elif isinstance(message, Event):
            self.event_listeners.notify(message)
            latched = (EventCode.FAULT_LATCHED, EventCode.ESTOP_LATCHED)
            if message.event in latched and self._engine is not None:
                self._eng.post(self._on_pen_latched, message)  # no telemetry may follow
            self._log.info("pen event", pen_event=EventCode(message.event).name,
                           pen_state=FirmwareState(message.state).name,
                           faults=Fault(message.faults).names)

    def _on_pen_latched(self, event: Event) -> None:
        """An EVENT FAULT_LATCHED / ESTOP_LATCHED: reconcile on it as on a report (the rows
        that need a settled report do not apply to an event)."""
        self._reconcile(FirmwareState(event.state), Fault(event.faults), settled=False)

    def _on_pen_state(self, t: PenTelemetry) -> None:
        """Bring the controller in line with what the pen reports (loop thread): `RECONCILE`."""
        self._reconcile(t.state, t.faults, self._eng.settled(t.received_at_s))

    def _reconcile(self, pen_state: FirmwareState, faults: Fault, settled: bool) -> None:
        state = self.state
        engine = self._eng
        row = reconcile(pen_state, faults, state, settled)
        if row is None:
            return
        reason = row.reason.format(pen_state=pen_state.name)
        if row.action == "stop":
            with contextlib.suppress(SmpError):
                if self.link is not None:
                    self.link.send(NeedleStop())
            engine.ops_done_s = self.clock.now()  # reports from before the stop are stale
            if state in SAFE:
                return
            trigger = "fault_detected"
        else:
            trigger = row.action
        self.last_fault = FaultInfo(reason, faults if row.carry_faults else Fault(0))
        self._enter_safe(trigger)

    def _forget_setpoints(self) -> None:
        """The pen forgets its setpoints whenever it retracts (fault, E-stop, reboot, lease)."""
        self.setpoints = None
        self._actuator_cmd_mm = None

    # ---- state machine plumbing (requests: control/requests.py; stops: control/safety.py)

    def _fire(self, trigger: str, reason: str) -> None:
        with self._fsm_lock:
            old = self.state
            if old in SAFE and not getattr(self._fsm, f"may_{trigger}")():
                # a stop latched from another thread overtook this request
                raise PenFault(f"the controller is {old.value}: {self.last_fault}")
            getattr(self._fsm, trigger)()
            new = self.state
        self._log = self._log.bind(state=new.value)
        self._log.info("state", old=old.value, new=new.value, reason=reason)
        self._announce()
        engine = self._engine
        if engine is not None and engine.alive and not engine.in_loop() and old not in OFFLINE:
            engine.post(self.state_listeners.notify, old, new, reason)  # in the loop thread
        else:
            self.state_listeners.notify(old, new, reason)
