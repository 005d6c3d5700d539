"""Review 17 (tech): a 0 typed at a verify point is refused and asked again, in a calibration's
step 4 and in `--verify-only` (`run_verify`). docs/technicians.md: "**0 at a depth point**: the
tip must be out at these positions; 0 means the gauge is not touching the tip". The verify
depths (0.5, 1.0, 1.5 mm) are such positions; a 0 there (the gauge lifted) was accepted and
failed the run ("error -0.500 mm exceeds 0.020 mm"): every reading of the run lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.verify import run_verify
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.ui.gauges import ManualGauge
from tests.smpdevice.virtual_time import virtual_sim

MAX_PROMPTS = 40


def typed_zero_once(sim, shown: list[str], at: str, zero: str) -> Callable[[str], str]:
    """A technician reading the simulated gauge, who types `zero` once at the prompt `at`."""
    gauge = SimulatorGauge(sim)
    state = {"prompts": 0, "typed_zero": False}

    def prompt(_: str) -> str:
        state["prompts"] += 1
        if state["prompts"] > MAX_PROMPTS:
            return "q"
        label = next(line for line in reversed(shown) if "Read the gauge" in line)
        if label.startswith(at) and not state["typed_zero"]:
            state["typed_zero"] = True
            return zero  # the gauge lifted off the tip, once
        return f"{gauge.read_mm(GaugeRequest(label='t', actuator_mm=0.0)):.4f}"

    return prompt


def asked_again(shown: list[str], at: str) -> None:
    asked = [i for i, line in enumerate(shown) if line.startswith(at)]
    refusal = shown[asked[0] + 1].strip()
    assert refusal.startswith("refused:") and "tip is still inside" in refusal, refusal


@pytest.mark.parametrize("zero", ["0", "0.000", "0,0 mm"])
@pytest.mark.parametrize("at", ["Verify at 0.5 mm", "Verify at 1.5 mm"])
def test_a_zero_at_a_verify_point_of_a_run_is_refused_and_asked_again(at, zero):
    shown: list[str] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        gauge = ManualGauge(prompt=typed_zero_once(sim, shown, at, zero), echo=shown.append)
        report = run_calibration(ctl, gauge, technician="ana",
                                 settings=CalibrationSettings(run_speed=False),
                                 echo=shown.append)
    asked_again(shown, at)
    assert report.passed, report.problems  # now: FAIL, verify error -0.500 mm


def test_a_zero_at_a_verify_only_point_is_refused_and_asked_again():
    shown: list[str] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        made = run_calibration(ctl, SimulatorGauge(sim), technician="ana",
                               settings=CalibrationSettings(run_speed=False))
        assert made.passed and made.calibration is not None, made.problems
        at = "Verify at 1 mm"
        gauge = ManualGauge(prompt=typed_zero_once(sim, shown, at, "0"), echo=shown.append)
        result = run_verify(ctl, gauge, made.calibration, echo=shown.append)
    asked_again(shown, at)
    assert result.passed, result.problems()
