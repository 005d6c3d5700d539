# ruff: noqa: F811  (the data_dir fixture, imported)
"""Review 18 b18g: README "Resuming an interrupted session" / control/needle_work.py: "a bare
`arm(); start_needle()` through the Python API ... appends one line". `end_pass_after()` is the
controller's public API (a pass planned in impressions, docs/safety.md); a Python user who
plans a bare pass with it before `start_needle()`, outside any session, leaves no line: the
resume counts those dots as the cut pass's and closes the session short of its dots."""
from __future__ import annotations

from pathlib import Path

from simulators import PenSimulator
from smpdevice.calibration.store import CalibrationStore
from smpdevice.control import PenController
from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from tests.smpdevice.cli.test_cli_run import data_dir  # noqa: F401 - a fixture
from tests.smpdevice.sessions.test_rev17_lost_link_count import PLANNED_DOTS
from tests.smpdevice.sessions.test_rev18b_unsaved_speed_check import _cut_then


def _planned_bare_start(sim: PenSimulator, data_dir: Path) -> None:
    with PenController.connect(sim.url) as pen:
        assert pen.identity is not None
        pen.set_calibration(CalibrationStore(data_dir / "calibrations.sqlite")
                            .latest_valid(pen.identity.serial))
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
        pen.arm()
        pen.end_pass_after(4)  # a bare pass planned in impressions: no session
        pen.start_needle()
        made = sim.firmware.impressions
        assert pen._wait_news(lambda: sim.firmware.impressions >= made + 3, 5.0)
        pen.stop_needle()
        pen.disarm()


def test_a_bare_start_planned_with_end_pass_after_sets_the_count_aside(
        data_dir: Path, tmp_path: Path) -> None:
    on_skin, made_between, out = _cut_then(data_dir, tmp_path, _planned_bare_start)
    assert made_between > 0
    assert on_skin >= PLANNED_DOTS, (on_skin, made_between, out)
    assert (data_dir / NEEDLE_WORK_NAME).exists(), "no needle-work line for the bare start"
