"""A Ctrl-C raised where Python cannot pass it on (a weakref callback of the import machinery:
"Exception ignored in ...", a traceback on the terminal) is neither printed nor lost: the `smp`
program's unraisable hook delivers SIGINT again, to whatever handler is in place (review 12:
seen once with Ctrl-C held down from the start)."""

from __future__ import annotations

import signal
from types import SimpleNamespace

from smpdevice.entry import _drop_signal_race


def test_an_unraisable_ctrl_c_is_delivered_again_and_not_printed():
    seen: list[int] = []
    printed: list[object] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        _drop_signal_race(SimpleNamespace(exc_value=KeyboardInterrupt()),
                          previous=printed.append)
        for _ in range(1000):  # the handler runs at a next step of the main thread
            if seen:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIGINT]
    assert printed == []


def test_any_other_unraisable_error_is_still_reported():
    printed: list[object] = []
    unraisable = SimpleNamespace(exc_value=ValueError("a real problem"))
    _drop_signal_race(unraisable, previous=printed.append)
    assert printed == [unraisable]
