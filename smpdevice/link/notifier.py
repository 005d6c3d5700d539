"""One fan-out type for every listener list (telemetry, pen events, state changes, frames).

A listener that raises is logged and skipped: one broken display never silences the others,
and never kills the thread that delivers (the reader, the controller loop).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, ParamSpec

import structlog

from smpdevice.checks import InvalidArgument

if TYPE_CHECKING:
    from smpdevice.link.clock import Timebase

P = ParamSpec("P")
log = structlog.get_logger("smpdevice.link")


# What each of the controller's listener lists passes its listeners (the link's "telemetry"
# list passes one Message too): checked when a listener is added.
CALLED_WITH: dict[str, tuple[str, ...]] = {
    "telemetry": ("telemetry",), "event": ("event",), "state": ("old_state", "new_state", "reason")}


def _is_async(listener: object) -> bool:
    """Whether calling `listener` only makes a coroutine (or async generator) that nobody
    awaits: an `async def` function or method, a partial of one, or an object whose
    `__call__` is one (inspect on Python 3.11 does not look at `__call__`: review6 R02)."""
    seen = 0
    while isinstance(listener, functools.partial) and seen < 100:  # partial of a partial...
        listener, seen = listener.func, seen + 1
    if inspect.iscoroutinefunction(listener) or inspect.isasyncgenfunction(listener):
        return True
    if inspect.isfunction(listener) or inspect.ismethod(listener) or inspect.isclass(listener):
        return False  # a plain function, or a class (calling it builds an instance)
    call = type(listener).__call__  # callable (checked before): its type has one
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def _unusable(listener: object, args: tuple[str, ...] | None) -> str | None:
    """Why `listener` can never serve as a listener called with `args`, or None."""
    if not callable(listener):
        return "it is not callable"
    if _is_async(listener):
        return "it is an async function: its coroutine would never run"
    if args is None:
        return None
    try:
        signature = inspect.signature(listener)
    except (TypeError, ValueError):  # some builtins have none: nothing to check
        return None
    try:
        signature.bind(*args)
    except TypeError:
        return f"it cannot be called with {len(args)} argument(s) ({', '.join(args)})"
    return None


class Notifier(Generic[P]):
    """Listeners called in order with the same arguments; safe to change from any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: tuple[Callable[P, object], ...] = ()
        self._lock = threading.Lock()

    def add(self, listener: Callable[P, object], *, name: str = "listener") -> None:
        """Add `listener`. What could never be called (5, None, an async function whose
        coroutine nobody awaits, a function taking other arguments than this list passes) is
        refused here, not logged as a traceback on every event."""
        why = _unusable(listener, CALLED_WITH.get(self.name))
        if why is not None:
            shown = repr(listener)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise InvalidArgument(
                f"{name}={shown} is refused: {why}; allowed: a plain function or method, called "
                f"with each {self.name} notification on a thread of the controller. Pass the "
                "function itself (e.g. print), not what it returns.")
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
            except BaseException as exc:
                # Also SystemExit (a UI's sys.exit() on a fault): it would end the thread that
                # delivers (the reader, the controller loop). A Ctrl-C is the user's, and only
                # the main thread gets one: it goes on up from there.
                if (isinstance(exc, KeyboardInterrupt)
                        and threading.current_thread() is threading.main_thread()):
                    raise
                with contextlib.suppress(Exception):  # a failing log must not stop the others
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
