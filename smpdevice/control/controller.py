"""The controller: a state machine that drives the pen inside the safety envelope.

Threads and who owns what:
- a **request** is carried out in the caller's thread, under the engine's lock (so the
  controller is safe to call from several threads): its state checks, its frame, and over a
  pty the reading of its reply (`smpdevice.link.engine`). A request never overtakes pen news
  already queued for the loop: it then runs in the loop, after it;
- the **engine's loop thread** is the timer: retransmissions, the pen's dead-man lease, silence,
  pen news and the state listeners. A hung loop stops renewing, so the pen stops the needle;
- the **reader thread** (in `Link`) decodes frames while nobody waits for a reply;
- **safety stops** act in the caller's thread at once, bypassing every queue (grbl's real-time
  commands): `estop()` and a stop's lease hold never wait for the loop or the engine's lock.

Nothing resumes by itself: after a fault, an E-stop, a reboot of the pen or a reconnect the
controller is in `fault`, `estop` or `idle`, and the needle starts only on an explicit request.
The policy (which request in which state, what to do when the pen disagrees) is the tables of
`smpdevice.control.states`.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import structlog

from firmware_protocol.codes import Capability
from firmware_protocol.messages import Disarm, Event
from smpdevice import checks
from smpdevice.control.calibrating import CalibratingMixin
from smpdevice.control.calibration import Calibration, checked_whole
from smpdevice.control.connection import ConnectionMixin
from smpdevice.control.guard import GuardMixin
from smpdevice.control.listener_checks import require_listener
from smpdevice.control.needle_work import note_needle_work
from smpdevice.control.news import PenNewsMixin
from smpdevice.control.pen import PenIdentity, PenTelemetry, Setpoints
from smpdevice.control.requests import RequestsMixin
from smpdevice.control.safety import SafetyMixin
from smpdevice.control.sim_time import SimTimeMixin
from smpdevice.control.states import (
    OFFLINE,
    SAFE,
    FaultInfo,
    PenFault,
    State,
    StateError,
    build_machine,
)
from smpdevice.control.wire_units import bump
from smpdevice.envelope import ZoneEnvelope
from smpdevice.errors import SmpError
from smpdevice.link.engine import RequestEngine
from smpdevice.link.notifier import Notifier
from smpdevice.link.wire import Link, Tracked
from smpdevice.logs import ensure_configured

log = structlog.get_logger("smpdevice.control")
_STATES = {state.value: state for state in State}


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


class PenController(ConnectionMixin, SafetyMixin, GuardMixin, RequestsMixin, CalibratingMixin,
                    PenNewsMixin, SimTimeMixin):
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
        self.zone_name: str | None = None
        self._zone: ZoneEnvelope | None = None
        self.setpoints: Setpoints | None = None
        self.running_since_s: float | None = None
        self._actuator_cmd_mm: float | None = None
        self._fsm = _Fsm(self)
        self._machine = build_machine(self._fsm)
        self._engine: RequestEngine | None = None
        # telemetry and pen events reach listeners on their own threads (bounded, drop-oldest):
        # a blocking listener never stalls the reader or the loop (review r10); `_news` is
        # notified on every telemetry frame and state change. All three are on self.clock.
        self.telemetry_listeners: Notifier[[PenTelemetry]]
        self.event_listeners: Notifier[[Event]]
        # the host's own counters (a session's pass figures): fed on the thread that read each
        # report, before the queued listeners, so no listener's pace can make them lag or drop
        self._telemetry_counters: Notifier[[PenTelemetry]] = Notifier("telemetry")
        self._bind_clock(self.clock)
        self.state_listeners: Notifier[[State, State, str]] = Notifier("state")
        self.close_listeners: Notifier[[]] = Notifier("close")  # connection.py close()
        self._state_news: collections.deque[tuple[State, State, str]] = collections.deque()
        self._notify_lock = threading.RLock()
        self._state_fired = self._state_told = 0  # changes made / told to the listeners
        self._log = log
        # Safety stops act in the caller's thread, never waiting for the loop or the link:
        # the state changes under this lock, and the two holds below stop lease renewal at once.
        self._fsm_lock = threading.RLock()
        self._lease_hold = threading.Event()  # a stop is under way: renew nothing until it ends
        self._estop_hold = False  # an E-stop is latched here: renew nothing until cleared
        self._estop_lock = threading.Lock()  # one shared ESTOP tracker for concurrent estop()
        self._estop_tracked: Tracked | None = None
        self._latched_before: int | None = None
        self._fault_log: tuple[float, str, list] | None = None
        self._simulated_for: tuple[PenIdentity | None, str, bool] | None = None

    def __enter__(self) -> PenController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            super().open()
        except BaseException:
            self._stop_time_driver()  # pensim://?clock=virtual: nothing is left running
            raise

    def close(self) -> None:
        self._refuse_in_loop("close()")  # outside the try: a refused close() stops nothing
        try:
            super().close()  # its stop and disarm wait on the pen's clock: still driven
        finally:
            self._stop_time_driver()

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
        name = self._fsm.state
        return _STATES.get(name) or State(name)  # a dict: State(name) costs ~1 us each time

    @property
    def simulated(self) -> bool:
        """True when this is no real pen: a `pensim://` port, or a pen whose IDENTIFY says
        SIMULATED (a simulator over a pty or TCP). Records made with it carry the flag."""
        identity, port = self.identity, self.port_url
        known = self._simulated_for  # asked on every setpoint: the Flag test costs ~1 us
        if known is not None and known[0] is identity and known[1] == port:
            return known[2]
        simulated = (port.strip().lower().startswith("pensim://") or (
            identity is not None and Capability.SIMULATED in identity.capabilities))
        self._simulated_for = (identity, port, simulated)
        return simulated

    @property
    def calibration(self) -> Calibration | None:
        return self._calibration

    @property
    def zone(self) -> ZoneEnvelope | None:
        """The active zone's envelope, narrowed to the pen's limits (and a client's floor).
        Its floor above its ceiling: no depth is allowed, and a refusal says why. A copy: the
        guard's own can never be changed through it (review 18)."""
        zone = self._zone
        return None if zone is None else zone.model_copy()

    def add_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        """Called with every telemetry frame in physical units, on the controller's telemetry
        thread (never the reader's: a slow listener only drops old frames, counted in
        `telemetry_listeners.dropped`)."""
        require_listener(listener)  # listener_checks.py
        self.telemetry_listeners.add(listener)

    def remove_telemetry_listener(self, listener: Callable[[PenTelemetry], None]) -> None:
        self.telemetry_listeners.remove(listener)

    def add_inline_telemetry_reader(self, reader: Callable[[PenTelemetry], None]) -> None:
        """Host-internal, not for integrators (use `add_telemetry_listener`): `reader` is
        called with every report, in order, never dropped, on the thread that read it. It must
        only append under a lock of its own, or read a flag: while it runs, no frame is read
        (replies, lease renewals). Its users: a session's pass counter (`sessions.session`,
        `pass_counter`), the calibration spin's frames (`control.calibrating`), the service's
        spin (`service.calibrating`), and a workflow spin's stop watch
        (`calibration.stopping`: it asks the run's cheap `should_stop` and stops the spin)."""
        self._telemetry_counters.add(reader)

    def remove_inline_telemetry_reader(self, reader: Callable[[PenTelemetry], None]) -> None:
        self._telemetry_counters.remove(reader)

    def add_state_listener(self, listener: Callable[[State, State, str], None]) -> None:
        """Called with (old state, new state, reason) after every state change."""
        require_listener(listener)  # listener_checks.py
        self.state_listeners.add(listener)

    def add_event_listener(self, listener: Callable[[Event], None]) -> None:
        """Called with every EVENT the pen reports."""
        require_listener(listener)  # listener_checks.py
        self.event_listeners.add(listener)

    def set_calibration(self, calibration: Calibration | None) -> None:
        """Use `calibration` from now on (idle only). None or another pen's is refused."""
        checked_whole(calibration)
        self._call(self._do_set_calibration, calibration)

    def set_zone(self, zone: str) -> ZoneEnvelope:
        """Select the zone whose envelope every setpoint is checked against (not while running)."""
        checks.text("zone", zone, max_len=64)
        return self._call(self._do_set_zone, zone).model_copy()  # never the guard's own

    def set_setpoints(
        self, *, depth_mm: float, speed_hz: float, duty_pct: float, period_ms: float
    ) -> Setpoints:
        """Check against the zone's envelope, convert through the calibration, send."""
        setpoints = self._setpoints(depth_mm, speed_hz, duty_pct, period_ms)  # options.py
        return self._call(self._do_set_setpoints, setpoints)

    def arm(self) -> None:
        """idle -> armed. Needs a valid calibration, a zone and setpoints."""
        self._call(self._do_arm)

    def disarm(self) -> None:
        self._call(self._do_simple, "disarm", [Disarm()])

    def start_needle(self, *, settle_timeout_s: float = 1.0, run_for_s: float | None = None,
                     unless_stopped_since: int | None = None, zone: str | None = None) -> None:
        """armed -> running (a pass begins), once the needle stands at the set depth.

        Starting while the depth actuator still travels would put the first dots too shallow
        or too deep, so this waits (up to `settle_timeout_s`) for the measured depth to reach
        the command first. `run_for_s`: the pass's planned length: the controller stops the
        needle itself once it has run that long (and PLANNED_END_GRACE_S), whatever the
        caller's thread is doing meanwhile (`stopped_at_planned_end` then says so).
        `unless_stopped_since`: a `stops_asked` read when the start was decided: a stop, a
        latch or a lost link since (cleared or not) wins: not started (StartOvertaken).
        `zone`: the zone the start was decided for: in any other at its turn, not started.
        """
        # taken first, so a start refused by its arguments ends the mark too (impressions.py)
        in_pass = self._take_recorded_pass() is not None  # a session's recorded pass
        self._timeout_arg("settle_timeout_s", settle_timeout_s)  # every argument before
        if run_for_s is not None:  # anything is waited for, sent or stored (review 19)
            checks.finite_number("run_for_s", run_for_s, 0.0, 86400.0, unit="s", lo_open=True)
        zone = None if zone is None else checks.text("zone", zone, max_len=64)
        # a stop asked from here on (or since the caller's decision) wins over this start (R09)
        stops_before = self._stop_epoch if unless_stopped_since is None else checks.whole_number(
            "unless_stopped_since", unless_stopped_since, 0, self._stop_epoch)
        if self.state is State.ARMED:
            if self.setpoints is None:
                raise StateError("no setpoints since the last retract, fault or calibration: "
                                 "call set_setpoints() first")
            self._wait_depth_settled(settle_timeout_s, stops_before)
        if not in_pass and self.state is State.ARMED:
            note_needle_work(self, "a needle start outside a session")  # durable, first
        self._call(self._do_start, stops_before, run_for_s, zone)

    def retract(self) -> None:
        """Stop the needle and pull it back to actuator 0."""
        self._call(self._do_retract)

    def clear_faults(self) -> None:
        """fault/estop -> idle, once the cause is gone. A technician's explicit act."""
        self._call(self._do_clear)

    def wait_for_state(self, *states: State, timeout_s: float = 2.0) -> State:
        """Wait until the controller is in one of `states` (scripts, tests). Closed: StateError."""
        checks.finite_number("timeout_s", timeout_s, 0.0, 86400.0, unit="s", lo_open=True)
        if not states or not all(isinstance(state, State) for state in states):
            raise checks.InvalidArgument(f"wait_for_state needs one or more States, got {states!r}")
        self._refuse_in_loop("wait_for_state()")  # the loop waiting on itself: lease lapses
        if not self._wait_news(lambda: self.state in states or self.closed, timeout_s):
            raise SmpError(f"waited {timeout_s} s for {', '.join(s.value for s in states)}; "
                           f"still {self.state.value}")
        if self.state not in states:
            raise self._not_connected()  # closed: none comes (its clock may stand still)
        return self.state

    def _wait_news(self, predicate: Callable[[], bool] | None, timeout_s: float) -> bool:
        """Wait on telemetry and state news (never polling) until `predicate()` (None: never)."""
        with self._news:
            return self._news.wait_for(predicate, timeout_s)

    def pause(self, duration_s: float) -> None:
        """Let `duration_s` pass on the controller's clock (virtual in tests); ends at close()."""
        checks.finite_number("duration_s", duration_s, 0.0, 86400.0, unit="s")
        self._refuse_in_loop("pause()")
        self._wait_news(lambda: self.closed, duration_s)  # a closed pen's clock may stand still

    def _announce(self) -> None:
        self._news.notify_waiting()  # on every telemetry frame: no lock when nobody waits

    # ================================================================== loop-side work

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in the loop thread and wait for its result (or error)."""
        engine = self._engine
        if engine is None or not engine.alive:
            if self.state is State.DISCONNECTED:
                raise self._not_connected()  # closed, or why the link was lost
            raise StateError("the controller loop is not running")
        if engine.in_loop():
            raise StateError(
                "controller methods cannot be called from a listener (it runs in the "
                "controller's own thread); hand the work to another thread"
            )
        try:
            return engine.call(fn, *args)
        finally:
            if self._state_told < self._state_fired:  # else `_told` has nothing to wait for
                self._told()

    def _forget_setpoints(self) -> None:
        """The pen forgets its setpoints whenever it retracts (fault, E-stop, reboot, lease).
        Setpoints still on their way were computed before: never put in force (`bump`)."""
        self.setpoints = None
        self._actuator_cmd_mm = None
        bump(self)

    # ---- state machine plumbing (requests: control/requests.py; stops: control/safety.py)

    def _fire(self, trigger: str, reason: str, tell: bool = True) -> None:
        """Change state; the listeners hear of it in the loop (posted now, or with `tell`
        False by the caller's next post: an E-stop's wake of the loop waits for the pen's
        confirmation, so the two threads do not compete for the CPU meanwhile)."""
        with self._fsm_lock:
            old = self.state
            if not self._may(trigger, old):
                if old in SAFE:  # a stop latched from another thread overtook this request
                    raise PenFault(f"the controller is {old.value}: {self.last_fault}")
                # another request changed the state first (two threads disarming at once)
                raise StateError(f"{trigger} no longer applies: the controller is already "
                                 f"{old.value}")
            self._move(trigger, old)
            new = self.state
            self._state_news.append((old, new, reason))  # in the order of the changes
            self._state_fired += 1
            self._note_interruption(new, reason)  # a latch or a lost link: safety.py
        self._log = self._log.bind(state=new.value)
        self._announce()
        with contextlib.suppress(Exception):  # a log line never holds up a state's news
            self._log.info("state", old=old.value, new=new.value, reason=reason)
        engine = self._engine
        if engine is not None and engine.alive and not engine.in_loop() and old not in OFFLINE:
            if tell:
                engine.post(self._notify_state)  # listeners run in the loop thread
        else:
            self._notify_state()

    def _notify_state(self) -> None:
        """Tell the state listeners every change not yet told, oldest first (one at a time:
        changes fired in several threads reach them in the order they happened)."""
        with self._notify_lock:
            while self._state_news:
                self.state_listeners.notify(*self._state_news.popleft())
                self._state_told += 1
        self._announce()

    def _told(self) -> None:
        """Return once the state listeners heard of every change made so far (the loop tells
        them): a request's changes are told before it returns, as when the loop made them."""
        fired = self._state_fired
        engine = self._engine
        if self._state_told < fired and engine is not None and engine.alive:
            self._wait_news(lambda: self._state_told >= fired or not engine.alive,
                            self.link.max_command_time_s() if self.link else 2.0)
