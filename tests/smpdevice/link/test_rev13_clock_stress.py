"""Review 13 (REVSIM): many threads on one TimedCondition under a VirtualTimeDriver: sleepers
(predicate None), waiters on a clock predicate (no notify), waiters on a flag another thread
sets and notifies (notify_all under the lock, notify_waiting without it). Each wait must
end at the right virtual time, nothing may hang (wall-bounded), and the timebase's counts
must come back to zero.

The clock records every value it advanced to (a listener registered before the timebase's)
and, per thread, the first and the last `now()` read inside a wait (the deadline is
`first + timeout`; the last is the value the wait decided on). A woken waiter drops its
`runnable` count before it reads the clock, so the driver may make one more step while it
looks (pre-existing, the same in HEAD): a wait may decide at the first advanced value past
its deadline or the one after, never before and never later."""

from __future__ import annotations

import bisect
import random
import threading

import pytest

from simulators.clock import VirtualClock
from smpdevice.link.clock import VirtualTimeDriver, timebase_for

STEP_S = 0.002
WALL_LIMIT_S = 60.0


class RecClock(VirtualClock):
    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()
        self.values: list[float] = [0.0]
        self.on_advance(self.values.append)  # before any timebase: the value, then the wakes

    def now(self) -> float:
        v = self._now_s
        loc = self.local
        if getattr(loc, "rec", False):
            if loc.first is None:
                loc.first = v
            loc.last = v
        return v

    def arm(self) -> None:
        self.local.rec, self.local.first, self.local.last = True, None, None

    def disarm(self) -> tuple[float, float]:
        self.local.rec = False
        return self.local.first, self.local.last


def _first_at_or_after(values: list[float], t: float) -> tuple[float, float | None]:
    i = bisect.bisect_left(values, t)
    assert i < len(values), f"the clock never reached {t!r}"
    return values[i], (values[i + 1] if i + 1 < len(values) else None)


def _check_time(clock: RecClock, deadline: float, last: float, what: str) -> None:
    exp, nxt = _first_at_or_after(clock.values, deadline)
    assert last in (exp, nxt), (
        f"{what}: decided at {last!r}, the first step at/after {deadline!r} is {exp!r} "
        f"(then {nxt!r})")


def _run(seed: int, threads: int = 24, rounds: int = 12
         ) -> tuple[list[str], list[str], tuple[int, int, int], int]:
    """Run the threads; (hung threads, errors, the timebase's counts, conditions watched)."""
    rng = random.Random(seed)
    clock = RecClock()
    driver = VirtualTimeDriver(clock, STEP_S)
    tb = timebase_for(clock)
    cond = tb.condition()
    errors: list[str] = []
    flags: dict[int, list] = {}
    setter_times: dict[int, float] = {}
    plans = []
    for i in range(threads):
        kind = rng.choice(["sleep", "clockpred", "flag", "flag"])
        plans.append((i, kind, random.Random(rng.random())))

    def sleep(d: float) -> tuple[bool, float, float]:
        with cond:
            clock.arm()
            r = cond.wait_for(None, d)
            first, last = clock.disarm()
        return r, first, last

    def body(i: int, kind: str, r: random.Random) -> None:
        try:
            for n in range(rounds):
                if kind == "sleep":
                    d = r.choice([0.0, 0.001, 0.002, 0.0035, 0.01, 0.0201, 0.05])
                    res, first, last = sleep(d)
                    assert res is False
                    _check_time(clock, first + d, last, f"sleep {d}")
                elif kind == "clockpred":
                    d1 = r.choice([0.0, 0.003, 0.01, 0.04])
                    d2 = r.choice([0.002, 0.02, 0.1])
                    with cond:
                        clock.arm()
                        x = clock.now() + d1
                        res = cond.wait_for(lambda x=x: clock._now_s >= x, d2)
                        first, last = clock.disarm()
                    deadline = first + d2
                    if res:
                        assert last >= x or clock._now_s >= x
                    else:
                        assert x > deadline or x > last, (x, deadline, last)
                        _check_time(clock, deadline, last, "clockpred timeout")
                else:  # wait for a flag a helper thread sets after a virtual sleep
                    key = i * 1000 + n
                    flags[key] = [False]
                    d = r.choice([0.0, 0.002, 0.005, 0.03])
                    use_waiting = r.random() < 0.5

                    def setter(key=key, d=d, use_waiting=use_waiting) -> None:
                        with cond:  # counted (pending) from before its start until it parks:
                            tb.count(pending=-1)  # time must not run while it starts
                            cond.wait_for(None, d)
                        if use_waiting:
                            flags[key][0] = True
                            setter_times[key] = clock._now_s
                            cond.notify_waiting()
                        else:
                            with cond:
                                flags[key][0] = True
                                setter_times[key] = clock._now_s
                                cond.notify_all()

                    t = threading.Thread(target=setter, daemon=True)
                    with cond:
                        tb.count(pending=1)
                        t.start()
                        res = cond.wait_for(lambda key=key: flags[key][0], 5.0)
                        at = clock._now_s
                    t.join(WALL_LIMIT_S)
                    assert res is True, f"{kind}: flag set at {setter_times.get(key)!r}, " \
                                        f"the wait gave up at {at!r}"
        except BaseException as exc:
            errors.append(f"thread {i} ({kind}): {exc!r}")

    workers = [threading.Thread(target=body, args=p, daemon=True) for p in plans]
    driver.start()
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(WALL_LIMIT_S)
        hung = [w.name for w in workers if w.is_alive()]
    finally:
        driver.close()
    return hung, errors, (tb.parked, tb.runnable, tb.pending), len(tb._watched)


@pytest.mark.parametrize("seed", range(8))
def test_many_waiters_one_condition(seed: int) -> None:
    hung, errors, counts, watched = _run(seed)
    assert not hung, f"hung threads: {hung}; parked/runnable/pending {counts}"
    assert not errors, "\n".join(errors[:10])
    assert counts == (0, 0, 0)
    assert watched == 0  # no condition left on the timebase's watch list
