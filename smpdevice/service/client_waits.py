"""The synchronous client's waits for a future on its loop thread (`SyncServiceClient`)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from typing import Any

from smpdevice.service.client_wire import ServiceError


def wait_answer(future: concurrent.futures.Future, timeout_s: float, what: str, *,
                keep: bool = False) -> Any:
    """The future's result; a typed error (not a bare TimeoutError) when it never came. A
    TimeoutError raised by the coroutine itself (next_event) passes through as it is. A wait
    cut short (Ctrl-C) cancels the coroutine unless `keep` (a call's answer, still wanted): a
    `next_event` left running would take the next event (a session.result) from the next
    waiter, which then waits for it forever (review 13, HANG)."""
    try:
        if threading.current_thread() is threading.main_thread():
            sleep_until_done(future, timeout_s)
            return future.result(0)
        return future.result(timeout_s)
    except concurrent.futures.TimeoutError:
        if future.done():
            raise
        future.cancel()
        raise ServiceError(f"{what}: no answer within {timeout_s:g} s; is `smp serve` "
                           "running and its pen connected?") from None
    except BaseException:
        if not keep:
            future.cancel()
        raise


def sleep_until_done(future: concurrent.futures.Future, timeout_s: float) -> None:
    """The main thread, which takes Ctrl-C, waits in short sleeps: KeyboardInterrupt raised
    inside a lock's wait can leave the lock unowned in CPython, and the command then dies with
    "cannot release un-acquired lock" instead of its exit 130."""
    end_s = time.monotonic() + timeout_s
    pause_s = 0.0005
    while not future.done() and time.monotonic() < end_s:
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.02)
