"""The engine's operation queue, replies, lease renewal and ESTOP re-send (a mixin of
`RequestEngine`; everything here runs under the engine's lock, in whichever thread holds it).

One operation is on the wire at a time; each step is retransmitted with the same sequence number
(the pen deduplicates) on the link's adaptive timeout, doubling up to RTO_MAX_S. Everything
about a frame (its seq, its deadline) is set before it is written: its reply may be handled
before `Link.send` returns. A step is never resent once DEDUP_WINDOW other seqs (renewals
included) went out after it: the pen may have forgotten it and would run it twice (protocol.md
s4/s5); the request then ends unanswered, as after its last try. Nor is a step of a request
asked before an ESTOP the host wrote ever sent after it, stops excepted (`Link.send` checks
under its write lock: the loop need not have heard of the latch); the request ends with
SupersededByEStop.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

import structlog

from firmware_protocol import Frame, Message
from firmware_protocol.messages import Ack, Arm, EStop, LeaseRenew, Nack, NeedleStart, NeedleStop
from firmware_protocol.rules import DEDUPLICATED
from firmware_protocol.timing import DEDUP_WINDOW
from smpdevice.errors import SmpError
from smpdevice.link.clock import Clock
from smpdevice.link.completion import Completion
from smpdevice.link.items import EngineHost, Operation, Reply
from smpdevice.link.wire import RTO_MAX_S, Link, LinkTimeout, Tracked, no_reply_message

log = structlog.get_logger("smpdevice.link")


class OperationQueue:
    """Operations, replies, the lease and the ESTOP re-send of a `RequestEngine`."""

    link: Link
    host: EngineHost
    clock: Clock
    now: Callable[[], float]  # the clock's reading (RequestEngine's)
    lease_ms: int
    motion: tuple[type[Message], ...]
    neutral: tuple[type[Message], ...]
    ops: list[Operation]
    ops_done_s: float
    ops_done_rx: int
    # the place of the reply that ended the last operation with a NEEDLE_START: a report
    # before it may miss the needle's work (its counters), one after it that shows the needle
    # at rest has the pen's counters now, whatever requests ended since (`ops_done_rx`)
    starts_done_rx: int = 0
    next_lease_s: float
    submitted: int
    _lock: threading.RLock
    _queue: queue.SimpleQueue
    _virtual: bool
    _backlog: int
    _backlog_lock: threading.Lock
    _queued_replies: collections.Counter[int]  # seqs of replies queued for the loop
    _due_s: float
    _estop: Tracked | None
    _estop_due_s: float
    _renewals: collections.deque[int]

    def _put(self, item: object) -> None: ...  # RequestEngine's

    def _reply_queued(self, seq: int | None) -> bool:
        """A reply with this seq waits in the loop's queue (RequestEngine counts them)."""
        with self._backlog_lock:
            return seq is not None and self._queued_replies[seq] > 0

    def submit(self, op: Operation) -> None:
        """Queue `op` (under the lock); it goes on the wire when those before it are done."""
        op.number, self.submitted = self.submitted, self.submitted + 1
        if op.future is None:  # not asked through `call`: nobody gave it one
            op.future = Completion()
        if op.estops_seen is None:  # asked now (not through `call`)
            op.estops_seen = self.link.estops_written
        self.ops.append(op)
        if len(self.ops) == 1:
            self._send_step(op)

    def abandon(self, future: Completion, error: BaseException) -> BaseException:
        """The caller of `future` gave up (its own limit, Ctrl-C): its request must not reach
        the pen later. Not yet written: it is withdrawn. Written: the pen may apply it, so a
        NEEDLE_START or ARM is followed by NEEDLE_STOP at once (nobody would ask for that
        needle any more) and the request ends here (an ARM the pen applied unasked lapses
        with the lease: the host, not armed, does not renew it). A stop is never withdrawn.
        Returns the error for the caller."""
        if not self._lock.acquire(timeout=2.0):  # a hung loop: the link-lost path takes over
            return error
        try:
            if future.cancel():  # still queued for the loop: it never runs
                return error
            op = next((o for o in self.ops if o.future is future), None)
            if op is None:
                return error  # finished (or never an operation): nothing left to withdraw
            if op.stop or all(isinstance(m, (NeedleStop, EStop)) for m in op.steps):
                return error  # a stop only makes the pen safer: it still goes out
            if op is not self.ops[0]:
                self.ops.remove(op)  # never written
                if isinstance(error, LinkTimeout):
                    error = LinkTimeout(f"{error}; {op.step.TYPE.name} was withdrawn before "
                                        "it was sent: the pen never got it")
                if not future.done():
                    future.set_exception(error)
                return error
            name = op.step.TYPE.name
            moved = _moved(op)
            if moved:
                with contextlib.suppress(SmpError):  # a write failure is the link-lost path's
                    self.link.send(NeedleStop())
            if not isinstance(error, Exception):
                self._finish(op, error)
                return error
            said = (f"{error}; {name} was sent and the pen may have applied it"
                    + (": the host sent NEEDLE_STOP to be sure" if moved else ""))
            given_up = LinkTimeout(said) if isinstance(error, LinkTimeout) else error
            self._finish(op, given_up)
            return given_up
        finally:
            self._lock.release()

    def _neutral(self, op: Operation) -> bool:
        neutral = self.neutral
        for m in op.steps:  # noqa: SIM110  (a loop: no generator frame per request)
            if not isinstance(m, neutral):
                return False
        return True

    def mark_reports_stale(self, rx_no: int | None = None) -> None:
        """The pen's reports received so far (up to frame `rx_no`) predate what the host just
        did or learned (an operation's end, a stop): none of them shows the pen after it.
        Timed (`settled`) and ordered (`ops_done_rx`): on virtual time a report and the reply
        before it may carry the same instant."""
        self.ops_done_s = self.now()
        self.ops_done_rx = self.link.stats.rx_frames if rx_no is None else rx_no

    def settled(self, received_at_s: float) -> bool:
        """A pen report received at `received_at_s` shows the pen's state after every request:
        none pending could change it, and it postdates the last that could. Requests that never
        change the pen's state (a stream of SET_SETPOINTS) never starve reconciliation."""
        return (all(self._neutral(op) for op in self.ops)
                and received_at_s > self.ops_done_s)

    def fail_all(self, error: BaseException, before: int | None = None) -> None:
        """Every queued operation (submitted `before` that number) fails with `error`."""
        for op in list(self.ops):
            if before is not None and op.number >= before:
                continue
            self.ops.remove(op)
            if not op.future.done():
                op.future.set_exception(error)

    def _refused(self, op: Operation) -> SmpError | None:
        if op.check is not None and (refused := op.check()) is not None:
            return refused
        # op.steps[op.index] is op.step without the property's call (before every step)
        return (self.host.motion_refused() if isinstance(op.steps[op.index], self.motion)
                else None)

    def _send_step(self, op: Operation) -> None:
        op.attempt, op.step_sent = 0, False
        refused = self._refused(op)
        if refused is not None:
            self._finish(op, refused)
            return
        # everything about the frame is set before it is written: its reply may be handled
        # before `send` returns (by the reader, or at once on virtual time)
        # the mark is read before the seq is drawn: a draw by another thread in between makes
        # the count of later seqs too high (a resend given up early), never too low
        op.drawn_mark = self.link.seqs_drawn + 1
        op.seq = seq = self.link.next_seq()
        if seq in self._renewals:  # the counter wrapped: that seq is this op's now
            self._renewals.remove(seq)
        op.sent_at_s = self.now()
        op.deadline_s = op.sent_at_s + self.link.rto.rto_s
        if op.deadline_s < self._due_s and self._virtual:
            self._due_s = op.deadline_s  # its advance hook wakes the timer in time
        op.step_sent = True  # before the write: its reply may start the next step first
        try:
            self.link.send(op.steps[op.index], seq, op.estops_seen)  # refused past an ESTOP
        except SmpError as exc:
            self._finish(op, exc)

    def _retransmit(self, op: Operation, now: float) -> None:
        if self._reply_queued(op.seq):
            # Answered: its reply waits in the loop's queue (behind pen news that came first;
            # the loop thread starved on a loaded host). Neither resent nor given up: the loop
            # completes it. Given up here, a confirmed stop latched a fault (review 15a).
            op.deadline_s = now + self.link.rto.rto_s
            return
        if op.attempt + 1 >= op.attempts:
            self._give_up(op, no_reply_message(op.step.TYPE.name, op.attempts))
            return
        others = self.link.drawn_since(op.drawn_mark)
        if others >= DEDUP_WINDOW and op.step.TYPE in DEDUPLICATED:  # not IDENTIFY_REQUEST
            # a resend could run it a second time (a NEEDLE_START after the pedal was lifted,
            # a CLEAR_FAULTS over a newer latch): it ends unanswered instead
            self._give_up(op, out_of_window_message(op.step.TYPE.name, op.attempt + 1, others))
            return
        refused = self._refused(op)
        if refused is not None:
            self._finish(op, refused)
            return
        op.attempt += 1
        try:
            # same seq: the pen deduplicates; never past an ESTOP written since it was asked
            self.link.send(op.step, op.seq, op.estops_seen)
        except SmpError as exc:
            self._finish(op, exc)
            return
        self.link.stats.retransmissions += 1
        op.deadline_s = now + min(self.link.rto.rto_s * (2 ** op.attempt), RTO_MAX_S)

    def _give_up(self, op: Operation, message: str) -> None:
        """`op` ends unanswered (its last try, or out of the pen's duplicate window). One rule
        for both (protocol.md s5): a NEEDLE_START or ARM among the steps sent so far may have
        been applied with only the replies lost, so NEEDLE_STOP follows, to be sure."""
        self.link.stats.timeouts += 1
        moved = _moved(op)
        if moved:
            with contextlib.suppress(SmpError):  # a write failure is the link-lost path's
                self.link.send(NeedleStop())
        error = LinkTimeout(message + (" The host sent NEEDLE_STOP to be sure." if moved else ""))
        self._finish(op, error)
        self.host.on_operation_timeout(op, error)

    def _on_reply(self, frame: Frame) -> bool:
        """The reading thread completes the request itself; only if the lock is taken (the
        timer's turn, a caller's check) does the reply wait for the loop. Never blocks. On
        virtual time the loop takes every reply: the thread that pumps may be the time driver."""
        # Pen news queued for the loop came off the wire before this reply: it must be handled
        # first (an ESTOP_LATCHED event must not be acted on after the CLEAR_FAULTS that follows).
        rx_no = self.link.stats.rx_frames
        if self._virtual or self._backlog or not self._lock.acquire(blocking=False):
            self._put(Reply(frame, rx_no))
            return True
        try:
            self._on_op_reply(frame, rx_no)
        except Exception:  # a request's failure must not become the reader's
            with contextlib.suppress(Exception):  # nor a log line's (a lost stderr)
                log.exception("reply handling error")
        finally:
            self._lock.release()
        return True

    def _on_op_reply(self, frame: Frame, rx_no: int | None = None) -> None:
        if frame.seq in self._renewals:
            if isinstance(frame.message, Nack):  # the pen refused the lease: it has stopped
                self.host.on_lease_refused(frame.message)
            return
        if not self.ops or frame.seq != self.ops[0].seq:
            return  # a late duplicate
        op = self.ops[0]
        if op.attempt == 0:  # Karn: only unambiguous samples
            self.link.rto.sample(self.now() - op.sent_at_s)
        message = frame.message
        if isinstance(message, Nack):
            self._finish(op, self.host.nack_error(op.step, message), rx_no=rx_no)
            return
        op.index += 1
        if op.index < len(op.steps):
            self._send_step(op)
            return
        try:
            result = op.then() if op.then else message
        except BaseException as exc:
            self._finish(op, exc, rx_no=rx_no)
            return
        self._finish(op, None, message if result is None else result, rx_no)

    def _finish(self, op: Operation, error: BaseException | None, result: Any = None,
                rx_no: int | None = None) -> None:
        """`rx_no`: the place of the reply that ended `op` (None: no reply, or not known):
        reports received after it show the pen after `op` (`mark_reports_stale`)."""
        if self.ops and self.ops[0] is op:
            self.ops.pop(0)
        if not self._neutral(op):
            self.mark_reports_stale(rx_no)
            if any(isinstance(m, NeedleStart) for m in op.steps):
                self.starts_done_rx = self.ops_done_rx
        if not op.future.done():
            if error is not None:
                op.future.set_exception(error)
            else:
                op.future.set_result(result)
        if self.ops:
            self._send_step(self.ops[0])

    # ------------------------------------------------------------------ lease and ESTOP

    def renew_lease(self) -> None:
        if not self.host.lease_needed():
            return
        seq = self.link.next_seq()
        self._renewals.append(seq)  # before it is written: a NACK may come back at once
        try:
            self.link.send(LeaseRenew(self.lease_ms), seq)
        except SmpError:
            return  # the link-lost path takes over
        self.next_lease_s = self.now() + self.lease_ms / 4000

    def _resend_estop(self, now: float) -> None:
        tracked, link = self._estop, self.link
        if tracked is None:
            return
        if link.lost is not None:
            link.untrack(tracked)
            self._estop = None
            return
        if tracked.replied:
            link.untrack(tracked)
            if isinstance(tracked.waiter.reply, Ack):
                self._estop = None
                log.warning("E-stop confirmed by the pen (late)")
                return
            self._estop = tracked = link.track(EStop())  # refused (booting?): a fresh one
        if now >= self._estop_due_s:
            self._estop_due_s = now + RTO_MAX_S
            with contextlib.suppress(SmpError):  # a write failure is the link-lost path's
                link.send(EStop(), tracked.seq)
                link.stats.retransmissions += 1


def _moved(op: Operation) -> bool:
    """A NEEDLE_START or ARM is among the steps of `op` sent so far: given up, it may have
    been applied, so NEEDLE_STOP follows (the one rule of every give-up path)."""
    return any(isinstance(m, (NeedleStart, Arm)) for m in op.steps[:op.index + 1])


def out_of_window_message(command: str, sends: int, others: int) -> str:
    # Say why it was not sent again, so nobody takes this for a dead cable only.
    return (
        f"no reply from the pen to {command} after {sends} tries, and it is not sent again: "
        f"{others} other commands (lease renewals included) went out since and the pen "
        f"remembers only the last {DEDUP_WINDOW} to recognise a resend, so a resend could run "
        "it twice. It may or may not have been applied. Check the cable; a longer lease_ms "
        "renews less often and leaves room for more tries."
    )
