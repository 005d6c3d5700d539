"""Order requests on the engine's queue as states, never races (after review 12a's freeze).

`held_still(sim)` stops the pen's virtual clock (`TimeDriver.held`: the time driver takes no
step while it is held), so nothing on the wire moves on; taken before the first request is
asked, no thread's pace can let time run past it. `queue(pen, call)`
runs `call` in a thread until its request is queued behind those already there (or it has
ended): a wall-clock condition with a generous bound, never a sleep that must be long enough.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from tests.smpdevice.virtual_time import wall_until

WAIT_S = 30.0  # wall-clock bound on each condition: generous, 2 loaded cores


class Queued:
    """A call run in its own thread: its outcome (a value or the exception it raised)."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.outcome: list[object] = []
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], object]) -> None:
        try:
            self.outcome.append(call())
        except Exception as exc:  # handed to the test
            self.outcome.append(exc)

    def result(self) -> object:
        self._thread.join(timeout=WAIT_S)
        assert self.outcome, "the call never ended"
        return self.outcome[0]


def held_still(sim) -> contextlib.AbstractContextManager[None]:
    """Hold the pen's clock still for the block (`TimeDriver.held`: the time driver takes no
    step meanwhile): a request delayed on the wire stays there, and requests asked meanwhile
    queue behind it in the order they are asked."""
    return sim.time.held()


def queue(pen, call: Callable[[], object]) -> Queued:
    """Start `call`; return once its request is queued behind the others (or it ended)."""
    before = len(pen._eng.ops)
    queued = Queued(call)
    end = time.monotonic() + WAIT_S
    while len(pen._eng.ops) <= before and not queued.outcome:
        assert time.monotonic() < end, "the request never queued"
        time.sleep(0.001)
    return queued


def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (wall clock, generous bound) for `predicate()`: with the pen's clock held still,
    the host threads still hand replies on (a request goes on to its next step)."""
    wall_until(predicate, what, WAIT_S)
