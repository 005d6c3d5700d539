"""The request engine: the controller's only way to talk to the pen.

One loop thread owns, in this order of priority:
- the **operation queue**: each `Operation` is a list of messages sent one after another, one
  on the wire at a time, each retransmitted with the same sequence number (the pen deduplicates)
  on an adaptive timeout (`RtoEstimator`, with exponential backoff up to RTO_MAX_S);
- the **lease**: renewed every quarter lease while the host says it is needed;
- an **unconfirmed ESTOP**, re-sent until the pen confirms it or the link is lost;
- **silence detection**: no byte for `silence_limit_s()` is a lost link.

Requests from other threads are typed items on one queue; their callers wait on futures. The
loop sleeps on the queue until the next due time (a retransmission, a renewal, the silence
deadline); it never sleep-polls. Time comes from an injected `Clock`.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import structlog

from firmware_protocol import Frame, Message
from firmware_protocol.messages import Ack, EStop, LeaseRenew, Nack, NeedleStart, NeedleStop
from smpdevice.errors import SmpError
from smpdevice.link.clock import MONOTONIC, WALL_GUARD_S, Clock, timebase_for
from smpdevice.link.items import (
    Call,
    EngineHost,
    Lost,
    Operation,
    Reply,
    ResendEStop,
    Run,
    Wake,
)
from smpdevice.link.wire import (
    RTO_MAX_S,
    Link,
    LinkError,
    LinkTimeout,
    Tracked,
    no_reply_message,
)

log = structlog.get_logger("smpdevice.link")
_ENDING = Wake()  # the one wake a stopping engine still queues; never counted (virtual time)

IDLE_TICK_S = 0.05  # the host's periodic work (reconciliation, pass time) runs at least this often
SILENCE_MARGIN_S = 0.025  # see silence_limit_s


class RequestEngine:
    """Queue, retransmission, lease and silence for one connection (one `Link`)."""

    def __init__(self, link: Link, host: EngineHost, *, lease_ms: int, telemetry_hz: int,
                 clock: Clock = MONOTONIC, motion: tuple[type[Message], ...] = (),
                 neutral: tuple[type[Message], ...] = ()) -> None:
        self.link = link
        self.host = host
        self.clock = clock
        self.lease_ms = lease_ms
        self.telemetry_hz = telemetry_hz
        self.motion = motion
        self.neutral = neutral  # requests that never change the pen's state (SET_SETPOINTS)
        self.ops: list[Operation] = []  # FIFO: one request on the wire at a time
        self.ops_done_s = 0.0  # telemetry older than this may predate the last operation
        self.next_lease_s = 0.0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._estop: Tracked | None = None
        self._renewals: collections.deque[int] = collections.deque(maxlen=8)  # recent seqs
        self._estop_due_s = 0.0
        self._due_s = 0.0  # when the loop must run next (its timers), clock time
        self.timebase = tb = timebase_for(clock)
        self._virtual = tb.virtual
        self._answers = tb.condition()  # callers of `call` wait on it
        link.set_reply_hook(self._on_reply)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._stop.clear()
        if self._virtual:
            self.timebase.add_advance_hook(self._advanced)
        self._thread = threading.Thread(target=self._loop, name="smp-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop (from any thread); requests still queued fail."""
        self._stop.set()
        self.timebase.remove_advance_hook(self._advanced)
        self._put(Wake())
        thread = self._thread
        if thread and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._drain(LinkError("the connection this request was for is gone"))

    def stopping(self) -> None:
        """Ask the loop to end after the current item (called from inside the loop)."""
        self._stop.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def _drain(self, error: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if self._virtual and item is not _ENDING:
                self.timebase.count(pending=-1)
            if isinstance(item, Call) and not item.future.done():
                item.future.set_exception(error)

    # ------------------------------------------------------------------ from other threads

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` in the loop and wait for its result; an `Operation` it returns is
        queued and its outcome awaited (on the clock: bounded, never forever)."""
        future: Future = Future()
        answers = self._answers
        future.add_done_callback(lambda _f: answers.notify_all())
        self._put(Call(fn, args, future))
        limit = self.link.max_command_time_s() * 3 + 2.0
        with answers:
            answers.wait_for(future.done, limit)
        if not future.done():
            future.cancel()  # if it has not started, it never will
            if not future.done() or future.cancelled():
                raise LinkTimeout(f"no answer within {limit:.1f} s")
        return future.result()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` in the loop thread, soon; nobody waits for it."""
        self._put(Run(fn, args))

    def resend_estop(self, tracked: Tracked) -> None:
        """Keep re-sending this unconfirmed ESTOP until the pen confirms it or the link is lost."""
        self._put(ResendEStop(tracked))

    def cancel_estop(self) -> None:
        """The E-stop was reset (cleared): stop re-sending it (loop thread)."""
        if self._estop is not None:
            self.link.untrack(self._estop)
        self._estop = None

    def link_lost(self, error: BaseException) -> None:
        """The reader's failure, handed to the loop (Link's on_lost)."""
        self._put(Lost(error))

    def _put(self, item: object) -> None:
        if self._stop.is_set():  # the loop is ending: it takes nothing more (it may drain)
            if isinstance(item, Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(LinkError("the connection this request was for "
                                                    "is gone"))
            elif isinstance(item, Wake):
                self._queue.put(_ENDING)  # uncounted: only wakes the loop so that it ends
            return
        if self._virtual:
            self.timebase.count(pending=1)  # the time driver waits until the loop took it
        self._queue.put(item)

    def _advanced(self, now_s: float) -> None:
        if now_s >= self._due_s and not self._stop.is_set():
            self._put(Wake())

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        counted = False
        while not self._stop.is_set():
            timeout = self._sleep_s()
            if counted:  # the last item is done and the next due time is known
                self.timebase.count(pending=-1)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            counted = self._virtual and item is not None and item is not _ENDING
            try:
                if item is not None:
                    self._handle(item)
                if not self._stop.is_set():
                    self._timers()
            except Exception:  # the loop must survive anything a request throws at it
                log.exception("controller loop error")
        if counted:
            self.timebase.count(pending=-1)
        self._drain(LinkError("the connection this request was for is gone"))

    def _sleep_s(self) -> float:
        now = self.clock.now()
        due = self.next_lease_s if self.host.lease_needed() else now + IDLE_TICK_S
        if self.ops:
            due = min(due, self.ops[0].deadline_s)
        if self._estop is not None:
            due = min(due, self._estop_due_s)
        due = min(due, self.link.last_rx_s + self.silence_limit_s())
        self._due_s = max(due, now) if self._virtual else due
        if self._virtual:  # virtual time moves only by advancing: its hook wakes the loop
            return WALL_GUARD_S
        return max(0.0, min(due - now, IDLE_TICK_S))

    def _handle(self, item: object) -> None:
        if isinstance(item, Call):
            if not item.future.set_running_or_notify_cancel():
                return
            try:
                result = item.fn(*item.args)
            except BaseException as exc:
                item.future.set_exception(exc)
                return
            if isinstance(result, Operation):
                result.future = item.future
                self.submit(result)
            else:
                item.future.set_result(result)
        elif isinstance(item, Reply):
            self._on_op_reply(item.frame)
        elif isinstance(item, Run):
            item.fn(*item.args)
        elif isinstance(item, Lost):
            self.host.on_lost(str(item.error))
        elif isinstance(item, ResendEStop):
            if self._estop is not None and self._estop is not item.tracked:
                self.link.untrack(self._estop)  # one E-stop re-sent at a time; free its seq
            self._estop = item.tracked
            self._estop_due_s = self.clock.now() + RTO_MAX_S

    def _timers(self) -> None:
        now = self.clock.now()
        if self.ops and now >= self.ops[0].deadline_s:
            self._retransmit(self.ops[0], now)
        if self.host.lease_needed() and now >= self.next_lease_s:
            self.renew_lease()
        if self._estop is not None:
            self._resend_estop(now)
        self.host.on_tick(now)
        if not self._stop.is_set():
            silent_s = now - self.link.last_rx_s
            if silent_s > self.silence_limit_s():
                self.host.on_lost(f"the pen has been silent for {silent_s:.2f} s", True)

    def silence_limit_s(self) -> float:
        # Link loss is reported within two lease periods of the last byte received, less a
        # margin for the loop's wake-up and the reader's latency (bench/faults.py disconnects).
        # With slow telemetry, allow three telemetry periods of silence.
        limit = max(2 * self.lease_ms / 1000, 3 / self.telemetry_hz) - SILENCE_MARGIN_S
        return max(limit, 0.25)

    # ------------------------------------------------------------------ operations

    def submit(self, op: Operation) -> None:
        """Queue `op` (loop thread); it goes on the wire when those before it are done."""
        self.ops.append(op)
        if len(self.ops) == 1:
            self._send_step(op)

    def _neutral(self, op: Operation) -> bool:
        return all(isinstance(m, self.neutral) for m in op.steps)

    def settled(self, received_at_s: float) -> bool:
        """A pen report received at `received_at_s` shows the pen's state after every request:
        none pending could change it, and it postdates the last that could. Requests that never
        change the pen's state (a stream of SET_SETPOINTS) never starve reconciliation."""
        return (all(self._neutral(op) for op in self.ops)
                and received_at_s > self.ops_done_s)

    def fail_all(self, error: BaseException) -> None:
        """Every queued operation fails with `error` (loop thread)."""
        for op in list(self.ops):
            self.ops.remove(op)
            if not op.future.done():
                op.future.set_exception(error)

    def _refused(self, op: Operation) -> SmpError | None:
        return self.host.motion_refused() if isinstance(op.step, self.motion) else None

    def _send_step(self, op: Operation) -> None:
        op.attempt = 0
        refused = self._refused(op)
        if refused is not None:
            self._finish(op, refused)
            return
        try:
            op.seq = self.link.send(op.step)
        except SmpError as exc:
            self._finish(op, exc)
            return
        if op.seq in self._renewals:  # the counter wrapped: that seq is this op's now
            self._renewals.remove(op.seq)
        op.sent_at_s = self.clock.now()
        op.deadline_s = op.sent_at_s + self.link.rto.rto_s

    def _retransmit(self, op: Operation, now: float) -> None:
        if op.attempt + 1 >= op.attempts:
            self.link.stats.timeouts += 1
            if any(isinstance(m, NeedleStart) for m in op.steps):
                # it may have started with only the replies lost: stop it to be sure
                with contextlib.suppress(SmpError):
                    self.link.send(NeedleStop())
            error = LinkTimeout(no_reply_message(op.step.TYPE.name, op.attempts))
            self._finish(op, error)
            self.host.on_operation_timeout(op, error)
            return
        refused = self._refused(op)
        if refused is not None:
            self._finish(op, refused)
            return
        op.attempt += 1
        self.link.stats.retransmissions += 1
        try:
            self.link.send(op.step, op.seq)  # same seq: the pen deduplicates
        except SmpError as exc:
            self._finish(op, exc)
            return
        op.deadline_s = now + min(self.link.rto.rto_s * (2 ** op.attempt), RTO_MAX_S)

    def _on_reply(self, frame: Frame) -> bool:
        self._put(Reply(frame))
        return True

    def _on_op_reply(self, frame: Frame) -> None:
        if frame.seq in self._renewals:
            if isinstance(frame.message, Nack):  # the pen refused the lease: it has stopped
                self.host.on_lease_refused(frame.message)
            return
        if not self.ops or frame.seq != self.ops[0].seq:
            return  # a late duplicate
        op = self.ops[0]
        if op.attempt == 0:  # Karn: only unambiguous samples
            self.link.rto.sample(self.clock.now() - op.sent_at_s)
        message = frame.message
        if isinstance(message, Nack):
            self._finish(op, self.host.nack_error(op.step, message))
            return
        op.index += 1
        if op.index < len(op.steps):
            self._send_step(op)
            return
        try:
            result = op.then() if op.then else message
        except BaseException as exc:
            self._finish(op, exc)
            return
        self._finish(op, None, message if result is None else result)

    def _finish(self, op: Operation, error: BaseException | None, result: Any = None) -> None:
        if self.ops and self.ops[0] is op:
            self.ops.pop(0)
        if not self._neutral(op):
            self.ops_done_s = self.clock.now()
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
        try:
            self._renewals.append(self.link.send(LeaseRenew(self.lease_ms)))
        except SmpError:
            return  # the link-lost path takes over
        self.next_lease_s = self.clock.now() + self.lease_ms / 4000

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
