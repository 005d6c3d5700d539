"""A speed check's stop (NEEDLE_STOP, DISARM) that the pen never confirms ends as an unconfirmed
stop_needle() does (review 11a R03): the controller latches `fault`, renews nothing more, and
the pen stops the needle by itself within its lease. Nobody is told "stopped" while the needle
runs, whichever way the spin ends: its own end, `stop_spin()` (the service's pen.stop), or
end_calibration. On the simulator's virtual clock; `drop_type=` loses every frame of a type."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.states import PenFault
from smpdevice.link.wire import LinkError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

LEASE_MS = 200
BY_ITSELF_S = 3 * LEASE_MS / 1000 + 0.5  # the pen's own stop, with margin (virtual s)


def _connect(sim) -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=LEASE_MS,
                                 clock=sim.clock)


def _stopped_by_itself(sim, pen: PenController) -> None:
    """The host latched a fault (renewing nothing) and the pen stopped the needle itself."""
    assert pen.state is State.FAULT, (pen.state, pen.last_fault)
    # the host's own word, or the pen's (its lease ran out before the stop's last try)
    assert any(why in str(pen.last_fault)
               for why in ("did not confirm the needle stop", "LEASE_EXPIRED")), pen.last_fault
    assert not pen.lease_needed()
    sim.time.wait_until(lambda: sim.firmware.state is not FirmwareState.RUNNING, BY_ITSELF_S,
                        "the pen stopping the needle by itself (virtual s)")


@pytest.mark.parametrize("lost", ["NEEDLE_STOP", "DISARM"])
def test_a_spin_whose_stop_is_never_confirmed_is_a_fault_and_the_pen_stops(lost):
    with virtual_sim(seed=3, link_faults=f"drop_type={lost}") as sim, _connect(sim) as pen:
        pen.begin_calibration()
        with pytest.raises((LinkError, PenFault)):  # never a measured speed
            pen.calibration_spin(150.0, 0.4)
        _stopped_by_itself(sim, pen)


def test_stop_spin_unconfirmed_is_a_fault_not_a_spin_stopped_with_the_needle_running():
    with (virtual_sim(seed=3, link_faults="drop_type=NEEDLE_STOP") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        ended: list[BaseException] = []

        def spin() -> None:
            try:
                pen.calibration_spin(150.0, 30.0)
            except BaseException as exc:  # handed to the test
                ended.append(exc)

        worker = threading.Thread(target=spin, daemon=True)
        worker.start()
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, 2.0,
                            "the needle running")
        pen.stop_spin()  # the service's pen.stop during a calibration.spin
        sim.time.wait_until(lambda: bool(ended), 10.0, "the spin ending")
        worker.join(timeout=30)
        # never SpinStopped ("the needle is stopped"): the pen did not confirm it
        assert isinstance(ended[0], (LinkError, PenFault)), ended
        _stopped_by_itself(sim, pen)


def test_end_calibration_unconfirmed_is_a_fault():
    with (virtual_sim(seed=3, link_faults="drop_type=NEEDLE_STOP") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        with pytest.raises(LinkError):
            pen.end_calibration(None)
        _stopped_by_itself(sim, pen)


def test_a_confirmed_spin_stop_leaves_calibrating_renewing_as_before():
    """The stop holds renewal only until the pen confirms it: a spin that ends well leaves
    the controller calibrating, no fault, and the next spin runs."""
    with virtual_sim(seed=3) as sim, _connect(sim) as pen:
        pen.begin_calibration()
        assert pen.calibration_spin(150.0, 0.4) > 0
        assert pen.state is State.CALIBRATING and pen.lease_needed()
        assert pen.calibration_spin(120.0, 0.4) > 0
        pen.end_calibration(None)
        assert pen.state is State.IDLE


def test_a_spin_start_that_reaches_the_pen_after_the_host_gave_up_never_runs_leased():
    """NEEDLE_START arrives 2 s late, after the host has given it up: the host now ends the
    spin with a confirmed stop (NEEDLE_STOP, DISARM) before saying so, so the late start
    finds the pen disarmed. Before, only an unconfirmed NEEDLE_STOP went out (noop while
    armed, overtaken by the late start) and the controller renewed the lease of a running
    needle while `calibrating`."""
    with (virtual_sim(seed=3, link_faults="delay_type=NEEDLE_START:2.0") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        with pytest.raises(LinkError):
            pen.calibration_spin(150.0, 0.4)
        ran: list[bool] = []
        for _ in range(int((3.0 + BY_ITSELF_S) / 0.1)):  # past every late start, virtual
            sim.time.sleep(0.1)
            ran.append(sim.firmware.state is FirmwareState.RUNNING)
        assert not any(ran[-int(BY_ITSELF_S / 0.1):]), "the needle runs, leased, off skin"
