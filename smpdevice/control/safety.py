"""Safety stops that never wait for the link (a mixin of `PenController`).

E-stop and needle stops act in the caller's thread: lease renewal stops at once (the pen then
stops the needle by itself within one lease, whatever happens to the frames), the state
changes at once, and only then is the pen's confirmation awaited. The engine asks
`lease_needed` and `motion_refused` before every renewal and every frame that could move the
needle.
"""

from __future__ import annotations

import contextlib

from firmware_protocol import Message
from firmware_protocol.codes import Fault
from firmware_protocol.messages import Ack, EStop, LeaseRenew
from smpdevice.control.core import ControllerCore
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import (
    CLOSED_BY_PROGRAM,
    HOST_ESTOP,
    LEASED,
    MOTION,
    OFFLINE,
    SAFE,
    EStopUnconfirmed,
    FaultInfo,
    PenFault,
    State,
)
from smpdevice.errors import SmpError
from smpdevice.link.completion import Completion
from smpdevice.link.engine import Operation, RequestEngine
from smpdevice.link.notifier import Notifier
from smpdevice.link.wire import (
    MAX_ATTEMPTS,
    RTO_MAX_S,
    Link,
    LinkError,
    Tracked,
    format_frames,
)

_NO_FAULTS = Fault(0)
FAULT_LOG_DELAY_S = 0.02  # the fault's frame history is logged this long after the stop


class SafetyMixin(ControllerCore):
    """stop_needle, estop, and the controller's way into `fault` / `estop`."""

    _pen_rebooted: bool = False  # requests.py: a clear asks the telemetry rate again
    _report_at_boot: PenTelemetry | None = None  # the last report before a known reboot

    def stop_needle(self) -> None:
        """running -> armed (the pass ends).

        The stop never depends on the link: lease renewal stops at once and resumes only when
        the pen confirms the stop. If it never does, the controller goes to `fault` and the
        pen stops the needle by itself when its lease runs out.

        From a state listener (the loop thread, which carries the pen's answers) it sends
        NEEDLE_STOP and returns at once, without waiting for the ACK; the state changes to
        `armed` when the pen confirms, and the listeners hear of it then.
        """
        if self.state in (State.RUNNING, State.ARMED):
            self._hold(estop=False)
        engine = self._engine
        if engine is not None and engine.alive and engine.in_loop():
            self._stop_from_loop(engine)
            return
        try:
            self._call(self._do_stop)
        except LinkError as exc:
            self._latch_locally("fault_detected", self._unconfirmed_stop_reason(exc))
            raise

    def _stop_from_loop(self, engine: RequestEngine) -> None:
        """The loop thread holds the engine's lock (it runs every item under it): queue the
        stop's frame and return; waiting here for its ACK would block the very thread that
        handles it. The ACK completes it as any request's (`stopped()` moves the state); an
        unanswered or unsent stop (the link lost) is a fault, latched as from any other
        thread (the lease stays held: the pen stops by itself)."""
        op = self._do_stop()  # StateError (e.g. in `fault`) as from any other thread

        def finished(done: Completion) -> None:
            error = None if done.cancelled() else done.exception()
            if isinstance(error, LinkError):  # as stop_needle() from any other thread
                self._latch_locally("fault_detected", self._unconfirmed_stop_reason(error))
            elif error is not None:  # nobody waits to be told: the log says it
                self._log.warning("needle stop failed", error=str(error))

        op.future = Completion(finished)
        engine.submit(op)  # on the wire now, or right after the request now at the head

    def _unconfirmed_stop_reason(self, exc: BaseException, step: str | None = None) -> str:
        """`step`: the stop's step left unconfirmed (its later steps, a DISARM, a RETRACT, are
        named: the pen may have confirmed the needle stop itself)."""
        what = "the needle stop" if step in (None, "NEEDLE_STOP") else f"the needle stop's {step}"
        return (f"the pen did not confirm {what} ({exc}); the host stopped renewing "
                f"the lease, so the pen stops the needle by itself within {self.lease_ms} ms")

    def estop(self) -> None:
        """Emergency stop, from any state and any thread; latches until clear_faults().

        It never waits for the link: the ESTOP frame is written at once from this thread
        (bypassing every queue), lease renewal and every motion frame are held in the same hold
        of the link's write lock, right after it (nothing goes out between them; held too if
        the write fails), and the controller enters `estop` at once. From that write on, no
        request asked before it goes out (again), stops excepted: it ends with
        SupersededByEStop (the link checks, not the loop: a resent CLEAR_FAULTS the pen never
        saw would undo the E-stop, review 8a R01).
        Then it waits for the pen's confirmation, re-sending ESTOP. Unconfirmed, it raises
        EStopUnconfirmed and the loop keeps re-sending until confirmed or the link is lost;
        the pen stops the needle by itself within one lease either way.
        """
        link = self.link
        depth = link.reading_depth() if link is not None else 0  # a handler may interrupt it
        try:
            if link is not None:
                link.claim_reading()  # this thread reads the confirmation (never waits for it)
            self._estop_on(link)
        finally:
            if link is not None:
                link.release_reading(depth)  # an outer reader in this thread keeps the port

    def _estop_on(self, link: Link | None) -> None:
        tracked: Tracked | None = None
        try:
            if link is not None and link.lost is None:
                tracked = self._shared_estop(link)
                link.estop_hold = self._hold_estop  # the holds, right after the ESTOP's write
                try:  # in the same hold of the write lock
                    link.send(tracked.message, tracked.seq)
                except SmpError:
                    link.untrack(tracked)
                    tracked = None
                else:  # the reader thread's wake overlaps the latch below, not the pen's answer
                    link.stand_by_reader()
        finally:
            if not (self._estop_hold and self._lease_hold.is_set()):
                self._hold(estop=True)  # not written (or interrupted): held all the same
        latched = self._latch_locally("estop_latched", HOST_ESTOP,
                                      tell_loop=tracked is None)
        by_itself = (f"the host renews nothing, so the pen stops the needle by itself when its "
                     f"lease runs out (within {self.lease_ms} ms)")
        if tracked is None or link is None:
            raise EStopUnconfirmed(
                f"E-stop not confirmed: the link to the pen is down. The controller is "
                f"{self.state.value} and {by_itself}. Reconnect to check the pen."
            )
        if self._await_estop(link, tracked, tell_loop=latched):
            link.untrack(tracked)
            return
        self._eng.resend_estop(tracked)
        raise EStopUnconfirmed(
            f"E-stop not confirmed by the pen after {MAX_ATTEMPTS} tries (it is still re-sent). "
            f"The controller is {self.state.value} and {by_itself}. Check the cable."
        )

    @property
    def estop_unconfirmed(self) -> bool:
        """True while an ESTOP is still being sent, not yet confirmed by the pen (`estop()`
        waiting, or `EStopUnconfirmed` raised and the loop re-sending it): `clear_faults()` is
        refused until the pen confirms it."""
        tracked, link, engine = self._estop_tracked, self.link, self._engine
        if engine is not None and engine.estop_resending:  # a refused one is sent afresh
            return True
        return tracked is not None and link is not None and link.tracking(tracked)

    def _shared_estop(self, link: Link) -> Tracked:
        """One E-stop tracker for every concurrent estop() (review r14): the first caller's,
        while its seq is still reserved on this link; the others wait on the same reply."""
        with self._estop_lock:
            current = self._estop_tracked
            if current is not None and link.tracking(current):
                return current
            self._estop_tracked = tracked = link.track(EStop())
            return tracked

    def _await_estop(self, link: Link, tracked: Tracked, tell_loop: bool) -> bool:
        """Re-send ESTOP (same seq) until the pen acknowledges it; False if it never does.
        The loop hears of the latch after the first wait (`tell_loop`): its follow-up work
        (failing what was pending) must not compete with the pen's answer for the CPU."""
        try:
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    try:
                        link.send(EStop(), tracked.seq)
                    except SmpError:
                        return False
                    link.stats.retransmissions += 1
                confirmed = tracked.wait(min(RTO_MAX_S, link.rto.rto_s * 2**attempt))
                if tell_loop:
                    tell_loop = False
                    self._tell_loop()
                if confirmed:
                    return isinstance(tracked.waiter.reply, Ack)
            return False
        finally:
            if tell_loop:
                self._tell_loop()

    def _latch_locally(self, trigger: str, reason: str, tell_loop: bool = True) -> bool:
        """Enter estop/fault now, from any thread; the loop fails what was pending and logs
        (told now, or by the caller with `_tell_loop` when `tell_loop` is False). True if this
        call latched. An E-stop held while offline is told to `held_estop_listeners`."""
        latched = self._latch_now(trigger, reason, tell_loop)
        if isinstance(latched, State):  # no state change and no frame tell of it: a session's
            self.held_estop_listeners.notify(latched, reason)  # recording must hear it
            return False
        return latched

    @property
    def held_estop_listeners(self) -> Notifier[[State, str]]:
        """Called (state, reason) in the requesting thread, once the hold latched it, for each
        E-stop requested while connecting or disconnected: no ESTOP frame crosses a dead port
        and the state does not change (open() enters `estop`), so a session's recording keeps
        it as an input from here (session 21)."""
        found = self.__dict__.get("_held_estop_listeners")
        if found is None:  # (made on first use: setdefault keeps one if two threads race)
            found = self.__dict__.setdefault("_held_estop_listeners", Notifier("held_estop"))
        return found

    def _latch_now(self, trigger: str, reason: str, tell_loop: bool) -> bool | State:
        """`_latch_locally`'s work; for an E-stop held while offline, the state it came in."""
        with self._fsm_lock:
            state = self.state  # one read: under the lock it cannot change meanwhile
            if state in OFFLINE and trigger == "estop_latched":
                # connecting or disconnected: the hold latches it; open() enters `estop` (r02)
                self.last_fault = FaultInfo(reason, _NO_FAULTS)
                return state
            if state in OFFLINE or state is State.ESTOP:
                return False
            if trigger == "fault_detected" and state is State.FAULT:
                return False
            self.last_fault = FaultInfo(reason, _NO_FAULTS)  # (its default is an enum call)
            self.running_since_s = None
            self._forget_setpoints()
            if self._engine is not None:  # requests from before the latch fail, not later ones
                self._latched_before = self._engine.submitted
            self._fire(trigger, reason, tell=tell_loop)
        if tell_loop:
            self._tell_loop()
        return True

    # Faults, E-stops and lost links entered so far (cleared or not) and the latest of them,
    # (state, reason): a session compares them across its passes (sessions/session_guard.py)
    _interruptions: int = 0
    last_interruption: tuple[State, str] | None = None

    @property
    def interruptions(self) -> int:
        """Faults, E-stops and lost links the controller entered so far, cleared since or
        not (a program's own close() is none): a caller that decided to go on before one
        reads it again and does not (`last_interruption`: the latest, state and reason)."""
        return self._interruptions

    def _note_interruption(self, new: State, reason: str) -> None:
        """`_fire`, under `_fsm_lock`: entering fault, E-stop or disconnected is a stop too,
        so a start decided before it never goes out, even once it is cleared or the link is
        back (`_do_start`'s `stops_before`): nothing resumes by itself."""
        if new in SAFE or new is State.DISCONNECTED:
            self._stop_epoch += 1
            if reason != CLOSED_BY_PROGRAM:  # the program's own close: no lost pen
                self._interruptions += 1
                self.last_interruption = (new, reason)

    def _tell_loop(self) -> None:
        engine = self._engine
        if engine is not None:  # one wake of the loop: the state listeners, then the rest
            engine.post(self._after_latch, self._latched_before)

    def _after_latch(self, before: int | None) -> None:
        self._notify_state()
        self._after_safe(before)

    def _may(self, trigger: str, state: State) -> bool:
        """`may_<trigger>()` of the machine, read from its table: the library's check lists
        every trigger of the state first (20-30 us, between an E-stop's write and its wait).
        A move with conditions (arm's guards) is still asked of the library; so would one with
        `prepare` callbacks, which `build_machine` gives none (test_may_from_table.py)."""
        event = self._machine.events.get(trigger)
        moves = None if event is None else event.transitions.get(state.value)
        if event is None or (moves and any(move.conditions for move in moves)):
            return bool(getattr(self._fsm, f"may_{trigger}")())
        return bool(moves)

    def _move(self, trigger: str, state: State) -> None:
        """Make `trigger`'s move from `state` (`_may` said yes): read from the machine's table
        and set, as `_may` reads it. The library's trigger walks about 60 calls (8 us hot,
        80-150 us cold: on an E-stop's path, between its write and the pen's answer); a move
        with conditions (arm's guards) is still made by the library."""
        moves = self._machine.events[trigger].transitions.get(state.value)
        if moves and len(moves) == 1 and not moves[0].conditions:
            self._machine.set_state(moves[0].dest, self._fsm)
        else:
            getattr(self._fsm, trigger)()

    def _hold(self, estop: bool) -> None:
        """Stop renewing (and, for an E-stop, every motion frame) at once. Under the link's
        write lock: a motion frame the engine checked before is already on the wire, none
        can follow (review r01: check-then-write from the loop thread)."""
        link = self.link
        lock = link.holding_writes() if link is not None else contextlib.nullcontext()
        with lock:
            self._lease_hold.set()
            if estop:
                self._estop_hold = True

    def _hold_estop(self) -> None:
        """`_hold(estop=True)` for a caller holding the write lock: right after the ESTOP's
        write, in the same hold of the lock, so no frame goes out between them (and the
        ESTOP goes out without waiting for these, about 20-40 us after an idle spell)."""
        self._lease_hold.set()
        self._estop_hold = True

    def motion_gate(self, message: Message) -> SmpError | None:
        """The link's last check before writing `message` (under its write lock)."""
        if not isinstance(message, MOTION):
            return None
        if isinstance(message, LeaseRenew) and self._lease_hold.is_set():
            return PenFault("a stop is under way: the lease is not renewed")
        return self.motion_refused()

    def lease_needed(self) -> bool:
        # the machine's state name against the set: `self.state` is a call more, asked before
        # every request (a State is its name, a StrEnum: the name is found in the set)
        return (self._fsm.state in LEASED and not self._lease_hold.is_set()
                and not self._estop_hold)

    def motion_refused(self) -> SmpError | None:
        if self._estop_hold or self._fsm.state in SAFE:
            return PenFault(f"stopped: {self.last_fault}")
        return None

    def on_operation_timeout(self, op: Operation, error: SmpError) -> None:
        if op.stop and self.state in (State.RUNNING, State.ARMED, State.CALIBRATING):
            # an unconfirmed stop (a pass's, a speed check's, end_calibration's): renew
            # nothing more, so the pen stops by itself
            self.last_fault = FaultInfo(self._unconfirmed_stop_reason(error, op.step.TYPE.name))
            self._enter_safe("fault_detected")

    def _latch_reboot(self, what: str) -> None:
        """A NACK BOOTING to any request of a session (a renewal, a stop, setpoints ...): the
        pen rebooted under us and comes up latched with POWER_RESET, its needle stopped. One
        way whichever request met it first (review 19: a planned-end stop's NACK left `armed`
        in a replay where the renewal's had latched the fault live)."""
        self._pen_rebooted = True
        self._report_at_boot = self.telemetry  # from before it: its next report starts again
        faults = self.telemetry.faults if self.telemetry is not None else Fault(0)
        self.last_fault = FaultInfo(f"the pen rebooted ({what})", faults | Fault.POWER_RESET)
        self._enter_safe("fault_detected")

    def _enter_safe(self, trigger: str) -> None:
        self.running_since_s = None
        self._forget_setpoints()
        with self._fsm_lock:
            if self.state is State.ESTOP:
                return  # latched from another thread meanwhile; its follow-up is queued
            self._fire(trigger, str(self.last_fault))
        self._after_safe()

    def _after_safe(self, before: int | None = None) -> None:
        """Engine side of entering fault/estop: fail what was pending (submitted `before` that
        number, when the latch came from another thread), log the last frames."""
        self._eng.fail_all(PenFault(f"stopped: {self.last_fault}"), before)
        # Formatting the frame history costs more than the stop itself: snapshot it now, log it
        # a little later (on_tick), after whoever waits for the stop has been answered.
        if self.link is not None:
            self._fault_log = (self.clock.now() + FAULT_LOG_DELAY_S, str(self.last_fault),
                               list(self.link.history))

    def _log_fault_when_due(self, now_s: float) -> None:
        pending = self._fault_log
        if pending is not None and now_s >= pending[0]:
            self._fault_log = None
            self._log.warning("fault", reason=pending[1], last_frames=format_frames(pending[2]))

    def _raise_if_faulted(self) -> None:
        if self.state in SAFE | {State.DISCONNECTED}:
            raise PenFault(f"the controller is {self.state.value}: {self.last_fault}")
