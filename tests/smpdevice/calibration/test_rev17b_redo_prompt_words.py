"""Review 17 (b17b): the "Redo depth point K" prompt tells the technician `r = redo previous
point`, but `r` there reads point K again. docs/technicians.md: "`r` there asks for the same
point again without using up a try". A technician who wants to go back to point K-1 (the
prompt's own offer) gets point K again; one who wants K again is told `r` does something else."""

from __future__ import annotations

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.ui.gauges import ManualGauge
from tests.smpdevice.virtual_time import virtual_sim


def redo_questions() -> list[str]:
    """The prompts the technician saw at the "Redo depth point 3" reading."""
    shown: list[str] = []
    asked: list[str] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        gauge = SimulatorGauge(sim)

        def prompt(question: str) -> str:
            value = gauge.read_mm(GaugeRequest(label="technician", actuator_mm=0.0))
            label = next(line for line in reversed(shown) if "Read the gauge" in line)
            if label.startswith("Redo depth point 3"):
                asked.append(question)
            if label.startswith("Depth point 3 of"):
                return f"{value + 0.05:.4f}"  # a misread the fit names
            return f"{value:.4f}"

        run_calibration(ctl, ManualGauge(prompt=prompt, echo=shown.append), technician="ana",
                        settings=CalibrationSettings(run_speed=False), echo=shown.append)
    return asked


def test_the_redo_prompt_says_what_r_does_there():
    asked = redo_questions()
    assert asked, "no Redo depth point 3 prompt"
    assert "redo previous point" not in asked[0], asked[0]
