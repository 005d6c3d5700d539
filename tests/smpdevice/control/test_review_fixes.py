"""Regression tests for the adversarial review's safety findings (notes/review r01..r14).

Each runs against the real simulator on its virtual clock; a race the finding needs is widened
deterministically (a hook, a paused loop), never by a sleep.
"""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from simulators import PenSimulator
from smpdevice.control import PenController, State
from smpdevice.envelope import DEFAULT_ZONES
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration
from tests.smpdevice.virtual_time import wait_until as virtual_wait_until

GENEROUS_S = 5.0  # waits are on conditions; this only bounds a broken run

pytestmark = pytest.mark.virtual_time


def wait_until(sim: PenSimulator, predicate, timeout_s: float = GENEROUS_S) -> None:
    virtual_wait_until(sim, predicate, timeout_s)


def hammer(pen: PenController, threads: int) -> tuple[threading.Event, list[threading.Thread]]:
    """`threads` callers issuing the allowed set_setpoints back to back (a UI and a session)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                pen.set_setpoints(**CROWN)
            except Exception:
                return

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    return stop, workers


# ---------------------------------------------------------------- r03: pass time starved


def test_pass_time_limit_fires_while_other_callers_keep_the_queue_busy(sim):
    quick = {"crown": DEFAULT_ZONES["crown"].model_copy(update={"max_pass_s": 0.3})}
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               zones=quick, lease_ms=200) as pen:
        run_needle(pen)
        sim.link.delay_inbound(0.02, MsgType.SET_SETPOINTS)  # replies late: ops always queued
        stop, workers = hammer(pen, 2)
        try:
            started = pen.running_since_s
            assert started is not None
            wait_until(sim, lambda: pen.state is not State.RUNNING, timeout_s=3.0)
            wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING)
            assert sim.clock.now() - started < 0.3 + 0.2  # within a lease of the limit
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=GENEROUS_S)
        assert pen.state in (State.ARMED, State.FAULT)
