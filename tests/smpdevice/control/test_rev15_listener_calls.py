"""Listeners are not the loop's masters (review 15).

- A listener that raises `SystemExit` (a UI callback calling `sys.exit()` on a fault) killed the
  thread that delivers: telemetry stopped for every listener; a state listener's killed the
  controller loop (clear_faults() "the controller loop is not running", estop() and close()
  raised the listener's SystemExit into their callers). docs/integration.md "Threads": "an
  exception in a listener is logged and does not stop the link".
- `wait_for_state()` and `pause()` called from a state listener (the loop thread) blocked it
  for their whole timeout, so the lease lapsed mid-pass; `reconnect()` there reported `idle`
  with no loop left. integration.md: "A controller method called from the loop thread raises
  `StateError` at once instead of hanging the loop".
Real time: a blocked or dead loop would hold a virtual clock still.
"""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import NackReason
from smpdevice.control import State
from smpdevice.control.states import StateError
from smpdevice.link.wire import CommandRefused
from tests.smpdevice.conftest import pen, run_needle, sim  # noqa: F401
from tests.smpdevice.virtual_time import wall_until

pytestmark = pytest.mark.realtime


def test_a_telemetry_listener_raising_systemexit_silences_no_other_listener(pen):
    raised = threading.Event()

    def quits(_telemetry) -> None:
        if not raised.is_set():
            raised.set()
            raise SystemExit(4)

    pen.add_telemetry_listener(quits)
    wall_until(raised.is_set, "the first listener's SystemExit", 5)
    frames = []
    pen.add_telemetry_listener(frames.append)
    wall_until(lambda: len(frames) >= 3, "frames to a second telemetry listener", 5)
    assert raised.is_set() and frames[-1] is not frames[0]  # the stream goes on after it


def test_a_state_listener_raising_systemexit_leaves_the_controller_working(sim, pen):
    run_needle(pen)

    def quits(old, new, reason) -> None:
        raise SystemExit(4)

    pen.add_state_listener(quits)
    sim.inject("jam")  # the loop fires running -> fault, and tells the listeners
    wall_until(lambda: pen.state is State.FAULT, "fault", 5)
    try:
        with pytest.raises(CommandRefused) as refused:  # not "the loop is not running"
            pen.clear_faults()
        assert refused.value.reason is NackReason.CONDITION_ACTIVE
        pen.estop()  # returns: the listener's SystemExit is not the E-stop's caller's
        assert pen.state is State.ESTOP
    finally:
        pen.state_listeners.remove(quits)  # the fixture's close() must not meet it


@pytest.mark.parametrize("call", ["wait_for_state", "pause"])
def test_a_waiting_call_from_a_state_listener_is_refused_and_the_pass_runs_on(sim, pen, call):
    outcome: list[object] = []

    def on_state(old, new, reason) -> None:
        if new is State.RUNNING and not outcome:
            try:
                if call == "wait_for_state":
                    pen.wait_for_state(State.ARMED, timeout_s=1.0)
                else:
                    pen.pause(1.0)
                outcome.append("returned")
            except Exception as exc:  # checked below
                outcome.append(exc)

    pen.add_state_listener(on_state)
    run_needle(pen)
    wall_until(lambda: outcome, "the listener's call to end", 5)
    assert isinstance(outcome[0], StateError), outcome[0]
    renewals = pen.link.stats.tx_frames
    wall_until(lambda: pen.link.stats.tx_frames >= renewals + 4 or pen.state is not State.RUNNING,
               "four more frames (lease renewals) while running", 5)
    assert pen.state is State.RUNNING, pen.last_fault


def test_reconnect_from_a_state_listener_is_refused_or_leaves_a_working_controller(sim, pen):
    """An "auto-reconnect" listener: `reconnect()` on `disconnected`, in the loop thread. It
    is not refused; it reports `idle`, but the new connection has no loop: every request
    after it is "StateError: the controller loop is not running"."""
    called: list[object] = []

    def auto_reconnect(old, new, reason) -> None:
        if new is State.DISCONNECTED and not called:
            called.append("calling")
            try:
                pen.reconnect()
                called.append("reconnected")
            except Exception as exc:  # refused (StateError): the promised behaviour
                called.append(exc)

    pen.add_state_listener(auto_reconnect)
    sim.disconnect()
    sim.reconnect()
    wall_until(lambda: len(called) > 1, "the listener's reconnect() to end", 10)
    if isinstance(called[1], StateError):
        return  # refused at once, as promised
    assert called[1] == "reconnected", called[1]
    pen.set_zone("crown")  # the reconnected controller must work
