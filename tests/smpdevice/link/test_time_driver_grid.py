"""A wall-paced time driver moves the clock in whole steps (CI, session 14): a part step
left the clock between ticks of the pen's 5 ms grid, so every pen frame after it was read a
few ms after the pen wrote it, the recording's pen times were late by as much, and
`smp replay --into-sim` aligned a jam on the wrong side of a drive window (no FAULT_LATCHED
before the recording's end, 4 runs in 100 on a loaded machine)."""

from __future__ import annotations

import threading

from simulators import VirtualClock
from smpdevice.link.clock import WALL_PACE_MAX_S, VirtualTimeDriver

STEP_S = 0.005


def test_wall_paced_time_moves_in_whole_steps():
    clock = VirtualClock()
    moves: list[float] = []
    enough = threading.Event()

    def seen(now_s: float) -> None:
        moves.append(now_s)
        if now_s >= 0.3:
            enough.set()

    clock.on_advance(seen)
    driver = VirtualTimeDriver(clock, STEP_S, name="test-grid", wall_pace=True)
    driver.start()
    try:
        # Nobody waits on the clock: every move is a wall-paced one, of whatever wall time
        # the driver's thread found had passed (a loaded machine: anything up to the cap).
        assert enough.wait(60), f"time stopped at {clock.now():.3f} s"
    finally:
        driver.close()
    steps = [round(now_s / STEP_S, 6) for now_s in moves]
    off_grid = [(now_s, n) for now_s, n in zip(moves, steps, strict=True) if n != int(n)]
    assert not off_grid, f"clock readings between steps: {off_grid[:5]}"
    jumps = [b - a for a, b in zip([0.0, *moves], moves, strict=False)]
    assert max(jumps) <= WALL_PACE_MAX_S + 1e-9, max(jumps)
