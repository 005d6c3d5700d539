"""The lanes under `AsyncPenController` (aio.py): a call run in a thread of its own, a stop or
undo awaited to its end through any cancellation, idempotent stops that share their runs, and
the bounded feeds that carry telemetry and state changes from the controller's threads to the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from smpdevice.control.states import CLOSED_BY_PROGRAM, State
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkError

T = TypeVar("T")
END = object()  # pushed to an open feed when nothing more will come: the iterator returns


class LinkLost(LinkError):
    """The link to the pen was lost (or was not there) while `telemetry(until_lost=True)` was
    read: `.reason` says why. The frames before it were delivered; reconnect, then read anew."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"link to the pen lost: {reason}; no more telemetry comes until "
                         "reconnect() succeeds: reconnect, then read a new telemetry() stream")
        self.reason = reason


def _quietly(stop: Callable[[], None]) -> None:
    """A stop or disarm undoing a given-up call: nothing to undo (StateError) is fine, and a
    failure is the controller's own fault path (it latched and stopped renewing the lease)."""
    with contextlib.suppress(SmpError):
        stop()


def run_in_new_thread(fn: Callable[..., T], *args: Any, name: str) -> Future[T]:
    """Run `fn` in a fresh daemon thread (nothing can be ahead of it) and return its future."""
    future: Future[T] = Future()

    def body() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)

    threading.Thread(target=body, name=name, daemon=True).start()
    return future


async def _through_cancels(future: Future[T]) -> T:
    """Await `future` to its end even if this task is cancelled again meanwhile (a nested
    wait_for, a TaskGroup, asyncio.run shutting down): a stop or undo is never
    left behind the caller. A cancellation that came meanwhile is raised once it has ended."""
    waiter = asyncio.wrap_future(future)
    cancelled = False
    while not waiter.done():
        try:
            await asyncio.shield(waiter)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return waiter.result()


class SharedRuns:
    """One idempotent stop's runs on a one-worker lane, shared (review 11 B2): a caller that
    comes while a run is queued and not yet begun gets that run (the same future), else it
    queues a new one. At most one run under way and one queued, whatever the flood; each
    caller's run begins after it asked. Any thread."""

    def __init__(self, submit: Callable[[Callable[[], Any]], Future[Any]]) -> None:
        self._submit = submit
        self._lock = threading.Lock()
        self._queued: tuple[object, Future[Any]] | None = None  # (its token, its future)

    def next_run(self, fn: Callable[[], T]) -> Future[T]:
        """The run that begins after now: the queued one (whose `fn` is its first caller's),
        or a new one of `fn`. Never cancel it: it is everyone's (await it through
        `_through_cancels` or a shield)."""
        with self._lock:  # held while submitting: the run's `_begin` looks only after
            queued = self._queued
            if queued is not None and not queued[1].done():  # done unbegun: cancelled
                return queued[1]
            token = object()
            run = self._submit(functools.partial(self._begin, token, fn))
            self._queued = (token, run)
            return run

    def _begin(self, token: object, fn: Callable[[], T]) -> T:
        """On the lane, at the run's turn: from now on a caller gets the next run."""
        with self._lock:
            if self._queued is not None and self._queued[0] is token:
                self._queued = None
        return fn()


class _Feed:
    """A bounded queue fed from another thread; drops the oldest item when full. Its last
    item (END, a LinkLost) is never dropped: nothing is queued after it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_queue: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue(max_queue)
        self.dropped = 0
        self.ended = False

    def push(self, item: Any) -> None:
        """Any thread: hand `item` to the loop (never blocks the caller)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: Any) -> None:
        if self.ended:  # the reader stops at the last item: nothing after it is read
            return
        self.ended = item is END or isinstance(item, LinkLost)
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(item)


def stream_watch(feed: _Feed, *, until_lost: bool,
                 changes: bool = False) -> Callable[[State, State, str], None]:
    """A stream's state listener: a lost link ends `feed` with LinkLost only if `until_lost`
    (else the stream waits on for the reconnect); the program's own close is no loss (its
    END comes through the controller's `close_listeners`, after every change is told).
    `changes`: each change is put in (state_changes: the change to `disconnected`, if the
    close made one, is delivered before the end)."""

    def on_change(old: State, new: State, reason: str) -> None:
        if changes:
            feed.push((old, new, reason))
        if new is State.DISCONNECTED and until_lost and reason != CLOSED_BY_PROGRAM:
            feed.push(LinkLost(reason))

    return on_change
