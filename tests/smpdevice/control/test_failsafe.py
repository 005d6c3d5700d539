"""No safety stop depends on the link (issue 11, item 1).

Each test loses or delays the stop's frames on the real simulator's link and checks, on the
simulated pen itself, that the needle stops by its lease: the host stops renewing it the
moment a stop is asked for, and the controller is in a safe state at once, never `running`.
"""

from __future__ import annotations

import contextlib

import pytest

from firmware_protocol.codes import Fault, FirmwareState, MsgType
from simulators import PenSimulator
from smpdevice.control import EStopUnconfirmed, PenController, State, StateError
from smpdevice.envelope import DEFAULT_ZONES
from smpdevice.errors import SmpError
from smpdevice.link import LinkTimeout
from tests.smpdevice.conftest import run_needle, true_calibration
from tests.smpdevice.virtual_time import wait_until as virtual_wait_until

GENEROUS_S = 5.0  # waits are on conditions; this only bounds a broken run


pytestmark = pytest.mark.virtual_time  # every wait below is on the simulator's clock


def wait_until(sim: PenSimulator, predicate, timeout_s: float = GENEROUS_S) -> None:
    virtual_wait_until(sim, predicate, timeout_s)


def renewals(sim: PenSimulator) -> int:
    return sim.firmware.executed[MsgType.LEASE_RENEW]


def needle_stopped(sim: PenSimulator) -> bool:
    return sim.firmware.state is not FirmwareState.RUNNING


def needle_stopped_by_its_lease(sim: PenSimulator) -> bool:
    return needle_stopped(sim) and bool(sim.firmware.faults & Fault.LEASE_EXPIRED)


def running(pen: PenController, sim: PenSimulator) -> None:
    run_needle(pen)
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.RUNNING)


# ---------------------------------------------------------------- E-stop


def test_estop_with_every_estop_frame_lost_stops_the_needle_by_the_lease(sim, pen):
    running(pen, sim)
    sim.link.drop_inbound(MsgType.ESTOP)
    before = renewals(sim)
    with pytest.raises(EStopUnconfirmed, match=r"stops the needle by itself.*200 ms"):
        pen.estop()
    assert pen.state is State.ESTOP  # at once, with no reply at all
    after_estop = renewals(sim)
    assert after_estop <= before + 1  # at most the one already on its way
    # (seeing the pen still run, the controller also sends NEEDLE_STOP; either stops it)
    wait_until(sim, lambda: needle_stopped(sim))
    assert renewals(sim) == after_estop  # nothing renewed it since
    assert pen.state is State.ESTOP
    assert sim.link.stats["dropped_frames_in"] >= 1
    # the controller keeps re-sending ESTOP: once frames get through, the pen confirms it
    sim.link.clear_inbound()
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.ESTOP)
    pen.clear_faults()
    assert pen.state is State.IDLE


def test_estop_when_everything_to_the_pen_is_lost_after_the_start(sim, pen):
    running(pen, sim)
    sim.link.drop_inbound()  # host -> pen: nothing gets through; telemetry still flows
    before = renewals(sim)
    with pytest.raises(EStopUnconfirmed):
        pen.estop()
    assert pen.state is State.ESTOP
    wait_until(sim, lambda: needle_stopped_by_its_lease(sim))
    assert renewals(sim) <= before + 1
    assert pen.state is State.ESTOP  # the link is up (telemetry): not declared lost


def test_estop_delayed_beyond_the_lease(sim, pen):
    running(pen, sim)
    seen: list[FirmwareState] = []
    pen.add_telemetry_listener(lambda t: seen.append(t.state))
    before = renewals(sim)
    sim.link.delay_inbound(3 * pen.lease_ms / 1000, MsgType.ESTOP)
    with contextlib.suppress(EStopUnconfirmed):  # confirmed or not depends on the RTO reached
        pen.estop()
    assert pen.state is State.ESTOP
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.ESTOP)  # the late ESTOP arrived
    assert renewals(sim) <= before + 1
    # ... but the needle had stopped before it did (the lease, or the controller's stop)
    first_stop = next(s for s in seen if s is not FirmwareState.RUNNING)
    assert first_stop is not FirmwareState.ESTOP, seen


def test_estop_with_the_link_down_leaves_a_safe_state_and_says_the_lease_stops_it(sim, pen):
    running(pen, sim)
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=GENEROUS_S)
    with pytest.raises(EStopUnconfirmed, match="link to the pen is down.*lease runs out"):
        pen.estop()
    assert pen.state is State.DISCONNECTED
    wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING)


def test_estop_still_written_at_once_and_confirmed_on_a_good_link(sim, pen):
    running(pen, sim)
    pen.estop()
    assert sim.firmware.state is FirmwareState.ESTOP
    assert pen.state is State.ESTOP
    assert pen.link.stats.timeouts == 0


# ---------------------------------------------------------------- needle stops


def test_unconfirmed_stop_needle_goes_to_fault_and_the_lease_stops_the_needle(sim, pen):
    running(pen, sim)
    sim.link.drop_inbound(MsgType.NEEDLE_STOP)
    with pytest.raises(SmpError):  # no reply (LinkTimeout), or the lapse came first (PenFault)
        pen.stop_needle()
    assert pen.state is State.FAULT  # safe, never left `running`
    wait_until(sim, lambda: needle_stopped_by_its_lease(sim))
    frozen = renewals(sim)
    sim.time.sleep(4 * pen.lease_ms / 1000)  # not a timing assertion: renewals must stay frozen
    assert renewals(sim) == frozen
    with pytest.raises(StateError, match="fault"):  # nothing moves until a person clears it
        pen.arm()


def test_pass_time_stop_that_gets_no_reply_still_stops_the_needle(sim):
    quick = {"crown": DEFAULT_ZONES["crown"].model_copy(update={"max_pass_s": 0.2})}
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               zones=quick, lease_ms=200) as pen:
        sim.link.drop_inbound(MsgType.NEEDLE_STOP)
        running(pen, sim)
        pen.wait_for_state(State.FAULT, timeout_s=GENEROUS_S)
        wait_until(sim, lambda: needle_stopped_by_its_lease(sim))
        frozen = renewals(sim)
        sim.time.sleep(4 * pen.lease_ms / 1000)
        assert renewals(sim) == frozen
        assert pen.state is State.FAULT


def test_stop_after_a_log_write_failure_never_depends_on_the_link(sim, pen, tmp_path, mocker):
    from smpdevice.passlog import PassLog, PassLogError
    from tests.smpdevice.sessions.test_session import open_session, short_profile

    with PassLog.open(tmp_path / "passlog.sqlite") as passlog:
        session = open_session(pen, passlog, short_profile(5.0, passes=1))

        def disk_full(*args, **kwargs):
            sim.link.drop_inbound(MsgType.NEEDLE_STOP)  # ... and the stop is lost too
            raise PassLogError("database or disk is full")

        mocker.patch.object(passlog, "checkpoint", side_effect=disk_full)
        with pytest.raises(PassLogError):
            session.play()
    assert pen.state is State.FAULT
    wait_until(sim, lambda: needle_stopped_by_its_lease(sim))


def test_a_stop_on_a_good_link_keeps_the_pen_armed_and_leased(sim, pen):
    running(pen, sim)
    pen.stop_needle()
    assert pen.state is State.ARMED
    sim.time.sleep(3 * pen.lease_ms / 1000)  # renewals resumed: the pen stays armed
    assert sim.firmware.state is FirmwareState.ARMED and pen.state is State.ARMED
    pen.start_needle()
    assert pen.state is State.RUNNING


def test_the_stop_error_says_the_lease_stops_the_needle(sim):
    # a lease longer than the stop's retransmissions: the stop times out before it lapses
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               lease_ms=1500) as pen:
        running(pen, sim)
        sim.link.drop_inbound(MsgType.NEEDLE_STOP)
        with pytest.raises(LinkTimeout, match="no reply"):
            pen.stop_needle()
        assert pen.state is State.FAULT
        assert "stops the needle by itself within 1500 ms" in str(pen.last_fault)
        wait_until(sim, lambda: needle_stopped_by_its_lease(sim))
