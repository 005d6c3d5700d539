"""Review 18 b18g: which start is a recorded pass (writes no `needle-work.jsonl` line) is said
only by TreatmentSession through `_recorded_pass_next`, never inferred from the public
`end_pass_after` (a bare start planned with it once left no line: a resume counted its dots
as a cut pass's). The marker is dropped on any move out of ARMED and after one start."""
from __future__ import annotations

from pathlib import Path

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from smpdevice.control.states import State
from smpdevice.paths import data_dir
from tests.smpdevice.conftest import true_calibration


def _lines() -> int:
    path: Path = data_dir() / NEEDLE_WORK_NAME
    return len(path.read_text().splitlines()) if path.exists() else 0


def _armed(pen: PenController) -> None:
    pen.set_setpoints(depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
    pen.arm()


def _start_stop(pen: PenController) -> None:
    pen.start_needle()
    pen.stop_needle()


def test_which_start_is_a_recorded_pass() -> None:
    # a pen on the clock its controller drives: no lease to lapse on a loaded machine
    with PenSimulator(seed=1, clock=VirtualClock(host_driven=True)) as sim, \
            PenController.connect(sim.url, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        _armed(pen)
        pen.end_pass_after(4)  # public: a bare pass planned in impressions
        _start_stop(pen)
        assert _lines() == 1, "a bare start planned with end_pass_after wrote no line"
        pen._recorded_pass_next("P1")  # the session's: no line
        _start_stop(pen)
        assert _lines() == 1
        _start_stop(pen)  # one start only: the next is bare again
        assert _lines() == 2
        pen._recorded_pass_next("P2")
        pen.disarm()  # out of ARMED: the marker is dropped, even armed again
        _armed(pen)
        _start_stop(pen)
        assert _lines() == 3
        pen._recorded_pass_next("P3")
        pen.retract()  # the pen stays armed; the retract is a stop asked: dropped too
        pen.set_setpoints(depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
        _start_stop(pen)
        assert _lines() == 4
        pen.disarm()
        pen._recorded_pass_next("P4")  # not armed: never kept
        _armed(pen)
        _start_stop(pen)
        assert _lines() == 5
        pen._recorded_pass_next("P5")
        pen.estop()  # an E-stop (a fault alike: out of ARMED) drops it
        pen.wait_for_state(State.ESTOP)
        pen.clear_faults()
        _armed(pen)
        _start_stop(pen)
        assert _lines() == 6
