"""A request whose reply came, but waits in the loop's queue, is never given up (review 15a).

A reply that arrives while items are queued for the engine's loop (pen news, a posted call)
waits behind them, so it is handled in the order it came. When the loop thread was starved on
a loaded host (not holding the engine's lock), the caller's own retransmission timer went on:
it resent the request and, after four tries, ended it "no reply from the pen" although every
try had been answered. In the suite: `smp calibrate --auto`'s speed-check stop, whose DISARM
was ACKed within 2 ms four times, latched a fault ("the pen did not confirm the needle stop's
DISARM"). Now a request whose reply is queued is neither resent nor given up: the loop ends it.

A real simulator in this process; the loop thread is held out of its queue for a moment (it
holds no lock meanwhile), as a starved thread is. No timing is asserted.
"""

from __future__ import annotations

import queue
import threading
import time

from firmware_protocol.messages import SetSetpoints
from simulators import PenSimulator
from smpdevice.control import PenController
from tests.smpdevice.conftest import CROWN, true_calibration

STALL_S = 1.0  # past every try of a request (15 x RTO: 0.3 s at the shortest), inside its limit


class _StallingQueue:
    """The engine's queue, whose `get` holds the loop thread once, after taking an item."""

    def __init__(self, real: queue.SimpleQueue) -> None:
        self.real = real
        self.stall = threading.Event()
        self.stalled = threading.Event()

    def put(self, item: object) -> None:
        self.real.put(item)

    def get_nowait(self) -> object:
        return self.real.get_nowait()

    def get(self, timeout: float | None = None) -> object:
        item = self.real.get(timeout=timeout)
        if self.stall.is_set():
            self.stall.clear()
            self.stalled.set()
            time.sleep(STALL_S)  # the loop thread starved, holding nothing
        return item


def test_a_request_answered_while_the_loop_is_starved_completes():
    with (PenSimulator(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim)) as pen):
        pen.set_zone("crown")
        engine = pen._eng
        stalling = _StallingQueue(engine._queue)
        engine._queue = stalling  # type: ignore[assignment]
        engine.post(lambda: None)  # the loop leaves its wait on the old object
        deadline = time.monotonic() + 30
        while engine._backlog and time.monotonic() < deadline:
            time.sleep(0.005)
        sim.link.delay_inbound(0.05)  # the request is on the wire when the loop stalls
        gate = pen.link.gate

        # The stall is set off by the request's own write (the motion gate runs inside `send`),
        # not by a thread's 20 ms sleep that a loaded machine could wake after the reply: then
        # the case did not happen (the assertion below).
        def stall_at_the_write(message):
            if isinstance(message, SetSetpoints) and not stalling.stall.is_set() \
                    and not stalling.stalled.is_set():
                stalling.stall.set()
                engine.post(lambda: None)  # taken, then held: later replies queue behind it
            return gate(message) if gate is not None else None

        pen.link.gate = stall_at_the_write
        try:
            pen.set_setpoints(**CROWN)  # before: LinkTimeout "no reply ... after 4 tries"
        finally:
            pen.link.gate = gate
        assert stalling.stalled.is_set(), "the loop was never held: the case did not happen"
        assert pen.link.stats.timeouts == 0
