"""Review 17 (tech): the entry at the fit's "Redo depth point K" prompt is checked as every
entry is (docs/technicians.md: "Every entry is checked before it is accepted ... a slipped
decimal point ... not growing"), with the "expected about" hint; `r` there reads the point
again instead of silently spending the retry. A slipped decimal point (1/10 of the reading)
was taken as it was: the retry spent, the fit refused again, the run failed.

A technician reads the simulated pen's own gauge (virtual time) and types it; depth point 3 is
first misread by +0.05 mm (off the line: the fit names it), then, at the redo prompt, typed as
`slip(value)` once before the true reading."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.ui.gauges import ManualGauge
from tests.smpdevice.virtual_time import virtual_sim

MAX_PROMPTS = 40


def guided_run(slip: Callable[[float], str], *, retries: int = 2) -> tuple[object, list[str]]:
    shown: list[str] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        gauge = SimulatorGauge(sim)
        state = {"prompts": 0, "slipped": False}

        def prompt(_: str) -> str:
            state["prompts"] += 1
            if state["prompts"] > MAX_PROMPTS:
                return "q"
            value = gauge.read_mm(GaugeRequest(label="technician", actuator_mm=0.0))
            label = next(line for line in reversed(shown) if "Read the gauge" in line)
            if label.startswith("Depth point 3 of"):
                return f"{value + 0.05:.4f}"  # a misread the fit names
            if label.startswith("Redo depth point 3") and not state["slipped"]:
                state["slipped"] = True
                return slip(value)
            return f"{value:.4f}"

        report = run_calibration(ctl, ManualGauge(prompt=prompt, echo=shown.append),
                                 technician="ana",
                                 settings=CalibrationSettings(run_speed=False,
                                                              fit_retries=retries),
                                 echo=shown.append)
    return report, shown


@pytest.mark.parametrize(("slip", "why"), [
    (lambda v: f"{v / 10:.4f}", "Did you mean"),  # the slipped decimal point
    (lambda v: f"{v * 10:.4f}", "Did you mean"),
    (lambda v: "0.05", "not above the previous point's"),  # below point 2's reading
    (lambda v: f"{v + 0.5:.4f}", "not below the next point's"),  # past point 4's reading
    (lambda v: "0", "tip is still inside"),
    (lambda v: "abc", "is not a number"),
], ids=["tenth", "tenfold", "below-previous", "above-next", "zero", "text"])
def test_an_entry_at_the_redo_prompt_is_refused_and_asked_again(slip, why):
    report, shown = guided_run(slip)
    redo = [i for i, line in enumerate(shown) if line.startswith("Redo depth point 3")]
    assert len(redo) == 1, shown  # one redo: the refused entry spent no retry
    assert "expected about" in shown[redo[0]], shown[redo[0]]
    after_slip = shown[redo[0] + 1].strip()
    assert after_slip.startswith("refused:") and why in after_slip, after_slip
    assert report.passed, report.problems  # the true reading, typed again, fits


def test_r_at_the_redo_prompt_reads_the_point_again_without_spending_the_retry():
    report, shown = guided_run(lambda v: "r", retries=1)
    assert "  reading depth point 3 again" in shown, shown
    assert sum(line.startswith("Redo depth point 3") for line in shown) == 2, shown
    assert report.passed, report.problems  # now: the one retry spent, "fit refused"
