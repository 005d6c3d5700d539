"""`Completion`, the engine's light Future: the same answers as `concurrent.futures.Future`
for what the engine and its callers use, under races between threads."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, InvalidStateError

import pytest

from smpdevice.link.completion import Completion

GENEROUS_S = 10.0


def test_a_result_is_set_once_and_the_hook_runs_once() -> None:
    seen: list[Completion] = []
    c = Completion(seen.append)
    assert not c.done() and not c.running()
    assert c.set_running_or_notify_cancel() and c.running()
    assert not c.cancel()  # running: too late to cancel
    c.set_result(42)
    assert c.done() and c.result() == 42 and c.exception() is None
    with pytest.raises(InvalidStateError):
        c.set_result(43)
    with pytest.raises(InvalidStateError):
        c.set_exception(ValueError("late"))
    assert c.result() == 42 and seen == [c]


def test_an_error_is_raised_by_result_and_returned_by_exception() -> None:
    c = Completion()
    error = TimeoutError("no answer")
    c.set_exception(error)
    assert c.exception() is error
    with pytest.raises(TimeoutError, match="no answer"):
        c.result()


def test_a_cancelled_request_never_runs() -> None:
    seen: list[Completion] = []
    c = Completion(seen.append)
    assert c.cancel() and c.cancel()  # cancelling twice says so twice, as a Future does
    assert c.done() and c.cancelled()
    assert not c.set_running_or_notify_cancel()
    with pytest.raises(CancelledError):
        c.result()
    with pytest.raises(InvalidStateError):
        c.set_result(1)
    assert seen == [c]


def test_result_waits_for_another_thread_and_times_out_when_nobody_answers() -> None:
    c = Completion()
    with pytest.raises(TimeoutError):
        c.result(timeout=0.01)
    answered = threading.Thread(target=lambda: c.set_result("pong"))
    answered.start()
    assert c.result(timeout=GENEROUS_S) == "pong"
    answered.join()


def _race_once() -> tuple[Completion, list[str]]:
    c = Completion()
    won: list[str] = []
    go = threading.Barrier(2)

    def cancel() -> None:
        go.wait()
        if c.cancel():
            won.append("cancel")

    def answer() -> None:
        go.wait()
        try:
            c.set_result(1)
            won.append("result")
        except InvalidStateError:
            pass

    threads = [threading.Thread(target=cancel), threading.Thread(target=answer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GENEROUS_S)
    return c, won


def test_cancel_and_completion_racing_agree() -> None:
    """Exactly one of cancel and set_result wins, and what the completion says is that one."""
    for _ in range(300):
        c, won = _race_once()
        assert len(won) == 1
        assert c.cancelled() == (won == ["cancel"])


def _handshake(cond, box: list[bool], waiting_first: bool) -> bool:
    waiter_done: list[bool] = []

    def waiter() -> None:
        with cond:
            waiter_done.append(cond.wait_for(lambda: box[0], 60.0))  # a lost wake: 60 s

    t = threading.Thread(target=waiter)
    t.start()
    while waiting_first and not cond._waiting:  # now and then: it already waits
        time.sleep(0.0005)
    box[0] = True  # make the predicate true, then tell whoever waits (maybe nobody yet)
    cond.notify_waiting()
    t.join(GENEROUS_S)
    return not t.is_alive() and waiter_done == [True]


def test_notify_waiting_never_loses_a_wakeup() -> None:
    """It skips the lock when nobody waits; a waiter arriving at any moment still sees the
    change (it counts itself under the lock before it checks the predicate)."""
    from smpdevice.link.clock import MONOTONIC, timebase_for

    cond = timebase_for(MONOTONIC).condition()
    for i in range(200):
        assert _handshake(cond, [False], waiting_first=i % 2 == 0)
