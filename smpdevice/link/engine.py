"""The request engine: the controller's only way to talk to the pen.

It owns, under one lock (`_lock`: whoever holds it may touch the queue and the host's state):
- the **operation queue**: each `Operation` is a list of messages sent one after another, one
  on the wire at a time, each retransmitted with the same sequence number (the pen deduplicates)
  on an adaptive timeout (`RtoEstimator`, with exponential backoff up to RTO_MAX_S);
- the **lease**: renewed every quarter lease while the host says it is needed;
- an **unconfirmed ESTOP**, re-sent until the pen confirms it or the link is lost;
- **silence detection**: no byte for `silence_limit_s()` is a lost link.

A request never changes threads on its way (each hand-off costs more than the pty round trip):
the caller's thread checks it and writes it (`call`), the thread that reads the reply (the
link's reader, or the caller itself, see `Link.wait`) completes it. The loop thread is the
timer: it sleeps on its queue until the next due time (a retransmission, a renewal, the silence
deadline) and runs what others post (`post`); it never sleep-polls. Time comes from a `Clock`.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any

import structlog

from firmware_protocol import Message
from smpdevice.link.clock import MONOTONIC, WALL_GUARD_S, Clock, now_function, timebase_for
from smpdevice.link.completion import Completion
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
from smpdevice.link.operations import OperationQueue
from smpdevice.link.silence import SilenceJudge
from smpdevice.link.wire import (
    RTO_MAX_S,
    Link,
    LinkError,
    LinkTimeout,
    Tracked,
)

log = structlog.get_logger("smpdevice.link")
_ENDING = Wake()  # the one wake a stopping engine still queues; never counted (virtual time)
GONE = "the connection this request was for is gone"

IDLE_TICK_S = 0.05  # the host's periodic work (reconciliation, pass time) runs at least this often
SILENCE_MARGIN_S = 0.025  # see silence_limit_s


class RequestEngine(OperationQueue):
    """Queue, retransmission, lease and silence for one connection (one `Link`)."""

    def __init__(self, link: Link, host: EngineHost, *, lease_ms: int, telemetry_hz: int,
                 clock: Clock = MONOTONIC, motion: tuple[type[Message], ...] = (),
                 neutral: tuple[type[Message], ...] = ()) -> None:
        self.link = link
        self.host = host
        self.clock = clock
        self.now = now_function(clock)
        self.lease_ms = lease_ms
        self.telemetry_hz = telemetry_hz
        self.motion = motion
        self.neutral = neutral  # requests that never change the pen's state (SET_SETPOINTS)
        self.ops: list[Operation] = []  # FIFO: one request on the wire at a time
        self.ops_done_s = 0.0  # telemetry older than this may predate the last operation
        self.ops_done_rx = 0  # and telemetry received up to this frame (mark_reports_stale)
        self.next_lease_s = 0.0
        self.submitted = 0  # operations submitted so far (each has its number)
        self._lock = threading.RLock()
        self._backlog = 0  # items queued for the loop (not wakes): a request waits behind them
        self._backlog_lock = threading.Lock()
        # seqs of replies queued for the loop and not yet handled: their request is answered
        self._queued_replies: collections.Counter[int] = collections.Counter()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = False  # the loop is ending (a plain flag: read on every request)
        self._thread: threading.Thread | None = None
        self._loop_id: int | None = None  # the loop thread's ident (`in_loop`)
        self._looping: threading.Thread | None = None  # the loop's thread until it returns
        self._estop: Tracked | None = None
        self._renewals: collections.deque[int] = collections.deque(maxlen=8)  # recent seqs
        self._estop_due_s = 0.0
        self._due_s = 0.0  # when the loop must run next (its timers), clock time
        self.timebase = tb = timebase_for(clock)
        self._virtual = tb.virtual
        self._silence = SilenceJudge(tb.virtual)  # a late wake gives the reader one turn
        self._answers = tb.condition()  # callers of `call` wait on it
        link.set_reply_hook(self._on_reply)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self._stop = False
        self._loop_id = None  # set by the loop itself, before it runs anything
        if self._virtual:
            self.timebase.add_advance_hook(self._advanced)
        self._thread = thread = threading.Thread(target=self._loop, name="smp-controller",
                                                 daemon=True)
        self._looping = thread  # `alive` from now until this loop returns
        try:
            thread.start()
        except BaseException:
            self._looping = None
            raise

    def stop(self) -> None:
        """End the loop (from any thread); requests still queued or pending fail."""
        self._stop = True
        self.timebase.remove_advance_hook(self._advanced)
        self._put(Wake())
        thread = self._thread
        if thread and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        self._drain()
        if self._lock.acquire(timeout=2.0):  # a hung loop's requests fail by their own limit
            try:
                self.fail_all(LinkError(GONE))
            finally:
                self._lock.release()

    def stopping(self) -> None:
        """Ask the loop to end after the current item (called from inside the loop)."""
        self._stop = True

    @property
    def alive(self) -> bool:
        # a field the loop clears as it returns: Thread.is_alive() is 4 Python calls, and
        # this is asked on every request
        return self._looping is not None

    def in_loop(self) -> bool:
        # the ident first (no Python frame, as current_thread() has: asked on every request);
        # alive: a finished loop's ident may be another thread's now
        return get_ident() == self._loop_id and self.alive

    def _drain(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if self._virtual and item is not _ENDING:
                self.timebase.count(pending=-1)
            self._took(item)
            if isinstance(item, Call) and not item.future.done():
                item.future.set_exception(LinkError(GONE))

    def _took(self, item: object) -> None:
        if item is not None and not isinstance(item, Wake):
            with self._backlog_lock:
                self._backlog -= 1
                if isinstance(item, Reply):
                    self._queued_replies[item.frame.seq] -= 1
                    if self._queued_replies[item.frame.seq] <= 0:
                        del self._queued_replies[item.frame.seq]

    # ------------------------------------------------------------------ from other threads

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` under the engine's lock, in this thread unless pen news or replies
        are queued before it (then in the loop, after them); an `Operation` it returns goes
        on the wire at once and its outcome is awaited (on the clock: bounded, never forever)."""
        link = self.link
        estops = link.estops_written  # first: a request asked before an ESTOP never follows it
        limit = link.max_command_time_s() * 3 + 2.0
        if self._stop:
            raise LinkError(GONE)
        future = Completion(self._answered)
        depth = link.reading_depth()  # a listener or handler may call in while it reads
        try:
            if not self._lock.acquire(timeout=limit):  # wall time: only a hung loop holds it
                raise LinkTimeout(f"no answer within {limit:.1f} s")
            try:
                if self._backlog:
                    self._put(Call(fn, args, future, estops))
                elif future.set_running_or_notify_cancel():
                    self._run_call(fn, args, future, link.claim_reading, estops)
                    self._kick()
            finally:
                self._lock.release()
            self._await(future, self.now() + limit, limit, depth)
        except BaseException as exc:  # timeout, Ctrl-C: what it asked for must not run later
            error = self.abandon(future, exc)
            if (isinstance(exc, LinkTimeout) and future.done() and not future.cancelled()
                    and future.exception() is None):
                return future.result()  # it succeeded just as the caller's limit passed
            if error is exc:
                raise
            raise error from None
        finally:
            link.release_reading(depth)  # inside the try: Ctrl-C at the write hands it back
        return future.result()

    def _answered(self, _future: Completion) -> None:
        self.link.interrupt()  # a caller reading for itself wakes (Link.wait)
        self._answers.notify_waiting()

    def _run_call(self, fn: Callable[..., Any], args: tuple, future: Completion,
                  before_send: Callable[[], object] | None = None,
                  estops_seen: int | None = None) -> None:
        try:
            result = fn(*args)
        except BaseException as exc:
            future.set_exception(exc)
            return
        if isinstance(result, Operation):
            result.future = future
            result.estops_seen = estops_seen
            if before_send is not None:
                before_send()  # this thread reads the reply: nobody else may take it first
            self.submit(result)
        else:
            future.set_result(result)

    def _await(self, future: Completion, end_s: float, limit: float, depth: int) -> None:
        """Wait for `future`, retransmitting the head of the queue when it is due (the loop
        does too, only later: this is the thread that waits for it)."""
        while not future.done():
            now = self.now()
            if now >= end_s:
                raise LinkTimeout(f"no answer within {limit:.1f} s")
            head = next(iter(self.ops), None)  # one snapshot: others change `ops` meanwhile
            due = min(end_s, head.deadline_s if head is not None else end_s)
            if self.link.wait(future.done, max(due - now, 0.0), self._answers):
                return
            now = self.now()
            self.link.release_reading(depth)  # never wait for the lock holding our port claim
            head = next(iter(self.ops), None)
            if head is not None and now >= head.deadline_s and self._lock.acquire(
                    timeout=max(end_s - now, 0.001)):
                try:
                    if self.ops and now >= self.ops[0].deadline_s:
                        self._retransmit(self.ops[0], now)
                finally:
                    self._lock.release()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` in the loop thread, soon; nobody waits for it."""
        self._put(Run(fn, args))

    def resend_estop(self, tracked: Tracked) -> None:
        """Keep re-sending this unconfirmed ESTOP until the pen confirms it or the link is lost."""
        self._put(ResendEStop(tracked))

    @property
    def estop_resending(self) -> bool:
        """An unconfirmed ESTOP is re-sent by the loop (perhaps a fresh one after a NACK)."""
        return self._estop is not None

    def cancel_estop(self) -> None:
        """The E-stop was reset (cleared): stop re-sending it (under the lock)."""
        if self._estop is not None:
            self.link.untrack(self._estop)
        self._estop = None

    def link_lost(self, error: BaseException) -> None:
        """The reader's failure, handed to the loop (Link's on_lost)."""
        self._put(Lost(error))

    def _put(self, item: object) -> None:
        if self._stop:  # the loop is ending: it takes nothing more (it may drain)
            if isinstance(item, Call) and item.future.set_running_or_notify_cancel():
                item.future.set_exception(LinkError(GONE))
            elif isinstance(item, Wake):
                self._queue.put(_ENDING)  # uncounted: only wakes the loop so that it ends
            return
        if not isinstance(item, Wake):
            with self._backlog_lock:
                self._backlog += 1
                if isinstance(item, Reply):
                    self._queued_replies[item.frame.seq] += 1
        if self._virtual:
            self.timebase.count(pending=1)  # the time driver waits until the loop took it
        self._queue.put(item)

    def _advanced(self, now_s: float) -> None:
        if now_s >= self._due_s and not self._stop:
            self._put(Wake())

    def _kick(self) -> None:
        """A caller granted the lease anew (renew at once): tell the timer."""
        if self.next_lease_s >= self._due_s or not self.host.lease_needed():
            return
        self._due_s = self.next_lease_s
        if not self._virtual:
            self._put(Wake())

    # ------------------------------------------------------------------ the loop (timer)

    def _loop(self) -> None:
        try:
            self._run_loop()
        finally:  # not alive from here on (a later loop of a restart keeps its own mark)
            if self._looping is threading.current_thread():
                self._looping = None

    def _run_loop(self) -> None:
        self._loop_id = get_ident()
        counted = False
        while not self._stop:
            with self._lock:
                timeout = self._sleep_s()
            if counted:  # the last item is done and the next due time is known
                self.timebase.count(pending=-1)
            if not self._virtual:
                self._silence.sleeping(self.now() + timeout)
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if not self._virtual:
                self._silence.woke(self.now())
            counted = self._virtual and item is not None and item is not _ENDING
            try:
                with self._lock:
                    try:
                        if item is not None:
                            self._handle(item)
                    finally:
                        self._took(item)
                    if not self._stop:
                        self._timers()
            except Exception:  # the loop must survive anything a request throws at it,
                with contextlib.suppress(Exception):  # its own log line included: stderr
                    log.exception("controller loop error")  # may be gone (review 11, F7)
        if counted:
            self.timebase.count(pending=-1)
        self._drain()

    def _next_due_s(self, now: float) -> float:
        due = self.next_lease_s if self.host.lease_needed() else now + IDLE_TICK_S
        if self.ops:
            due = min(due, self.ops[0].deadline_s)
        if self._estop is not None:
            due = min(due, self._estop_due_s)
        return min(due, self._silence.due_s(self.link.last_rx_s, self.silence_limit_s()))

    def _sleep_s(self) -> float:
        now = self.now()
        due = self._next_due_s(now)
        self._due_s = max(due, now) if self._virtual else due
        if self._virtual:  # virtual time moves only by advancing: its hook wakes the loop
            return WALL_GUARD_S
        return max(0.0, min(due - now, IDLE_TICK_S))

    def _handle(self, item: object) -> None:
        if isinstance(item, Call):
            if item.future.set_running_or_notify_cancel():
                self._run_call(item.fn, item.args, item.future, None, item.estops_seen)
        elif isinstance(item, Reply):
            self._on_op_reply(item.frame, item.rx_no)
        elif isinstance(item, Run):
            item.fn(*item.args)
        elif isinstance(item, Lost):
            self.host.on_lost(str(item.error))
        elif isinstance(item, ResendEStop):
            if self._estop is not None and self._estop is not item.tracked:
                self.link.untrack(self._estop)  # one E-stop re-sent at a time; free its seq
            self._estop = item.tracked
            self._estop_due_s = self.now() + RTO_MAX_S

    def _timers(self) -> None:
        now = self.now()
        if self.ops and now >= self.ops[0].deadline_s:
            self._retransmit(self.ops[0], now)
        if self.host.lease_needed() and now >= self.next_lease_s:
            self.renew_lease()
        if self._estop is not None:
            self._resend_estop(now)
        self.host.on_tick(now)
        heard_s = self.link.last_rx_s
        if not self._stop and self._silence.lost(now, heard_s, self.silence_limit_s()):
            self.host.on_lost(f"the pen has been silent for {now - heard_s:.2f} s", True)

    def silence_limit_s(self) -> float:
        # Link loss is reported within two lease periods of the last byte received, less a
        # margin for the loop's wake-up and the reader's latency (bench/faults.py disconnects).
        # With slow telemetry, allow three telemetry periods of silence.
        limit = max(2 * self.lease_ms / 1000, 3 / self.telemetry_hz) - SILENCE_MARGIN_S
        return max(limit, 0.25)
