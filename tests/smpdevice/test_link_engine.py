"""The link package's parts (notifier, clock injection, request engine) and the control tables."""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from firmware_protocol.codes import Fault, FirmwareState
from smpdevice.control.states import LEASED, POLICY, SAFE, State, reconcile
from smpdevice.controller import PenController
from smpdevice.link import Clock, MonotonicClock, Notifier, Operation
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration

# ---------------------------------------------------------------- Notifier


def test_a_failing_listener_is_logged_and_the_others_still_hear():
    heard: list[int] = []
    notifier: Notifier[[int]] = Notifier("test")

    def broken(x: int) -> None:
        raise RuntimeError("display gone")

    notifier.add(broken)
    notifier.add(heard.append)
    with capture_logs() as logs:
        notifier.notify(7)
    assert heard == [7]
    assert any(e["event"] == "test listener failed" for e in logs)


def test_a_listener_may_remove_itself_while_being_notified():
    notifier: Notifier[[int]] = Notifier("test")
    seen: list[str] = []

    def once(x: int) -> None:
        seen.append("once")
        notifier.remove(once)

    notifier.add(once)
    notifier.add(lambda x: seen.append("always"))
    notifier.notify(1)
    notifier.notify(2)
    assert seen == ["once", "always", "always"]
    assert len(notifier) == 1


# ---------------------------------------------------------------- the host's clock


class CountingClock(MonotonicClock):
    def __init__(self) -> None:
        self.reads = 0
        self.lock = threading.Lock()

    def now(self) -> float:
        with self.lock:
            self.reads += 1
        return super().now()


def test_the_controller_and_engine_read_time_from_the_injected_clock(sim):
    clock = CountingClock()
    assert isinstance(clock, Clock)
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                               clock=clock) as pen:
        before = clock.reads
        run_needle(pen)
        pen.stop_needle()
        assert pen._engine.clock is clock and pen.link.clock is clock
        assert clock.reads > before  # retransmission timers, lease, telemetry stamps
        assert pen.telemetry.received_at_s <= clock.now()


def test_requests_are_typed_operations_carried_out_by_the_engine(sim, pen):
    from firmware_protocol.codes import MsgType
    from smpdevice.pen import Setpoints

    pen.set_zone("crown")
    sp = Setpoints(**CROWN)
    # in the loop thread, a request is an Operation (not sent until the engine queues it) ...
    kind = pen._engine.call(lambda: type(pen._do_set_setpoints(sp)))
    assert kind is Operation
    before = sim.firmware.executed[MsgType.SET_SETPOINTS]
    # ... and the engine sends it, waits for the ACK, and answers the caller's future
    assert pen._engine.call(pen._do_set_setpoints, sp) == sp
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] == before + 1


# ---------------------------------------------------------------- the policy tables


def test_the_policy_table_decides_what_is_refused(pen):
    for action, (states, what) in POLICY.items():
        if State.IDLE in states:
            continue
        with pytest.raises(Exception, match=f"cannot {what} while idle"):
            pen._require(action)


def test_only_leased_states_renew_and_safe_states_never_do():
    assert not LEASED & SAFE
    assert State.RUNNING in LEASED and State.ESTOP in SAFE


@pytest.mark.parametrize(
    ("pen_state", "faults", "ctl", "settled", "action"),
    [
        (FirmwareState.RUNNING, Fault(0), State.ARMED, True, "stop"),
        (FirmwareState.RUNNING, Fault(0), State.ARMED, False, None),  # a start may be on its way
        (FirmwareState.RUNNING, Fault(0), State.ESTOP, True, "stop"),  # stop it, stay in estop
        (FirmwareState.RUNNING, Fault(0), State.RUNNING, True, None),
        (FirmwareState.ESTOP, Fault(0), State.RUNNING, False, "estop_latched"),
        (FirmwareState.FAULT, Fault.JAM, State.RUNNING, False, "fault_detected"),
        (FirmwareState.FAULT, Fault.JAM, State.ESTOP, False, None),
        (FirmwareState.ARMED, Fault(0), State.RUNNING, True, "fault_detected"),
        (FirmwareState.ARMED, Fault(0), State.RUNNING, False, None),
        (FirmwareState.IDLE, Fault(0), State.ARMED, True, "fault_detected"),
        (FirmwareState.IDLE, Fault(0), State.IDLE, True, None),
        (FirmwareState.FAULT, Fault.JAM, State.DISCONNECTED, True, None),
    ],
)
def test_reconciliation_table(pen_state, faults, ctl, settled, action):
    row = reconcile(pen_state, faults, ctl, settled)
    assert (row.action if row else None) == action
