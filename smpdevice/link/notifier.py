"""One fan-out type for every listener list (telemetry, pen events, state changes, frames).

A listener that raises is logged and skipped: one broken display never silences the others,
and never kills the thread that delivers (the reader, the controller loop).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, ParamSpec

import structlog

if TYPE_CHECKING:
    from smpdevice.link.clock import Timebase

P = ParamSpec("P")
log = structlog.get_logger("smpdevice.link")


class Notifier(Generic[P]):
    """Listeners called in order with the same arguments; safe to change from any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: tuple[Callable[P, object], ...] = ()
        self._lock = threading.Lock()

    def add(self, listener: Callable[P, object]) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove(self, listener: Callable[P, object]) -> None:
        with self._lock:
            items = list(self._listeners)
            if listener in items:
                items.remove(listener)
            self._listeners = tuple(items)

    def __len__(self) -> int:
        return len(self._listeners)

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for listener in self._listeners:  # a snapshot: listeners may come and go meanwhile
            try:
                listener(*args, **kwargs)
            except Exception:
                log.exception(f"{self.name} listener failed", listener=repr(listener))


class QueuedNotifier(Notifier[P]):
    """A `Notifier` whose listeners run on its own thread, never the caller's (review r10).

    The reader thread only enqueues: a listener that blocks (a frozen UI, a slow disk) never
    stalls frame handling, replies, lease renewal or the controller loop. The queue is bounded;
    when full the oldest item is dropped and counted in `dropped` (telemetry is a stream: the
    newest matters). On a virtual clock every queued or running delivery counts as pending
    work, so time moves only once listeners have seen each frame (a listener that waits on the
    virtual clock holds it: on virtual time, hand such work to another thread).
    """

    IDLE_EXIT_S = 1.0  # the delivery thread ends after this long with nothing to deliver

    def __init__(self, name: str, maxlen: int = 256, timebase: Timebase | None = None) -> None:
        super().__init__(name)
        self.maxlen = maxlen
        self.dropped = 0
        self._items: collections.deque[tuple[tuple, dict]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._timebase = timebase if timebase is not None and timebase.virtual else None

    def notify(self, *args: P.args, **kwargs: P.kwargs) -> None:
        if not self._listeners:
            return  # nobody listens: nothing to queue
        with self._cond:
            if len(self._items) >= self.maxlen:
                self._items.popleft()  # drop the oldest; one out, one in: pending unchanged
                self.dropped += 1
            elif self._timebase is not None:
                self._timebase.count(pending=1)
            self._items.append((args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"smp-{self.name}",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._items:
                    self._cond.wait(self.IDLE_EXIT_S)
                if not self._items:
                    self._thread = None  # a later notify starts a fresh one
                    return
                args, kwargs = self._items.popleft()
            try:
                Notifier.notify(self, *args, **kwargs)
            finally:
                if self._timebase is not None:
                    self._timebase.count(pending=-1)
