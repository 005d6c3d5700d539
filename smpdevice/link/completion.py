"""`Completion`: the outcome of one request, a lighter `concurrent.futures.Future`.

A Future takes a `threading.Condition` (a Python-level lock object) on every `done()` and
builds one per request; on the request path that is several microseconds per round trip, more
than a tenth of the pty's own. A completion changes state under a plain lock, reads its state
without one, and makes an event only when a thread really blocks on `result()`. The engine
sets one hook (`on_done`) instead of a callback list; otherwise it answers as a Future does
(`done`, `cancel`, `set_running_or_notify_cancel`, `set_result`, `set_exception`, `result`,
`exception`), and `InvalidStateError` when set twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, InvalidStateError
from typing import Any

_PENDING, _RUNNING, _CANCELLED, _FINISHED = 0, 1, 2, 3


class Completion:
    """One request's outcome (see the module's docstring). Thread-safe."""

    __slots__ = ("_error", "_event", "_lock", "_result", "_state", "on_done")

    def __init__(self, on_done: Callable[[Completion], None] | None = None) -> None:
        self._state = _PENDING
        self._result: Any = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._event: threading.Event | None = None  # made by the first blocking `result()`
        self.on_done = on_done  # called once, in the completing thread, after the outcome

    def __repr__(self) -> str:
        names = ("pending", "running", "cancelled", "finished")
        return f"<Completion {names[self._state]}>"

    # ---- reading (no lock: the state only ever moves forward)

    def done(self) -> bool:
        return self._state >= _CANCELLED

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def running(self) -> bool:
        return self._state == _RUNNING

    def result(self, timeout: float | None = None) -> Any:
        if self._state < _CANCELLED:  # done: no call to `_wait` (once per request)
            self._wait(timeout)
        if self._state == _CANCELLED:
            raise CancelledError()
        if self._error is not None:
            raise self._error
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        if self._state == _CANCELLED:
            raise CancelledError()
        return self._error

    def _wait(self, timeout: float | None) -> None:
        if self._state >= _CANCELLED:
            return
        with self._lock:
            if self._state >= _CANCELLED:
                return
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        if not event.wait(timeout):
            raise TimeoutError()

    # ---- changing state

    def cancel(self) -> bool:
        """Cancel it unless it started or finished; True if it is cancelled now."""
        with self._lock:
            if self._state in (_RUNNING, _FINISHED):
                return False
            if self._state == _CANCELLED:
                return True
            self._state = _CANCELLED
        self._finished()
        return True

    def set_running_or_notify_cancel(self) -> bool:
        """False if it was cancelled (it must not run); True: it runs now."""
        with self._lock:
            if self._state == _CANCELLED:
                return False
            if self._state != _PENDING:
                raise InvalidStateError(f"{self!r} already started")
            self._state = _RUNNING
        return True

    def set_result(self, result: Any) -> None:
        self._finish(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._finish(None, error)

    def _finish(self, result: Any, error: BaseException | None) -> None:
        with self._lock:
            if self._state >= _CANCELLED:
                raise InvalidStateError(f"{self!r} already done")
            self._result, self._error = result, error
            self._state = _FINISHED
        self._finished()

    def _finished(self) -> None:
        event = self._event  # made under the lock before the state moved, if anybody blocks
        if event is not None:
            event.set()
        hook = self.on_done
        if hook is not None:
            hook(self)
