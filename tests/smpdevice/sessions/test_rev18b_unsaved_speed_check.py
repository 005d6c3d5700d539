# ruff: noqa: F811  (the data_dir fixture, imported)
"""Review 18 b18d: README "Resuming an interrupted session": needle work of the pen since the
pass began sets the pen's count aside. A speed check that saved nothing (the Python API's
`end_calibration(None)`, a guided `smp calibrate` that failed after it, the service's
`calibration.spin` then `calibration.end`) and a bare `arm(); start_needle()` outside any
session move the needle too, and leave no calibration and no pass: each now leaves a line in
the data directory's `needle-work.jsonl` (`control.needle_work`), durable before the needle
moves, which the resume reads (measured before: the cut pass made 9 dots, the spin 5; the resume
played 6 with no note: 15 of 20 planned dots on the skin, the session closed completed)."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control import PenController
from smpdevice.control.needle_work import NEEDLE_WORK_NAME
from smpdevice.passlog import PassLog
from tests.smpdevice.calibration.test_calibration_cli import FAST, LiveInput, reading, run
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
)
from tests.smpdevice.sessions.test_rev17_lost_link_count import (
    PLANNED_DOTS,
    PROFILE,
    stall_link_after_dot,
)


def _unsaved_speed_check(sim: PenSimulator, data_dir: Path) -> None:
    with PenController.connect(sim.url) as pen:
        pen.begin_calibration()
        pen.calibration_spin(100.0, 0.3)
        pen.end_calibration(None)


def _bare_start(sim: PenSimulator, data_dir: Path) -> None:
    with PenController.connect(sim.url) as pen:
        assert pen.identity is not None
        pen.set_calibration(CalibrationStore(data_dir / "calibrations.sqlite")
                            .latest_valid(pen.identity.serial))
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
        pen.arm()
        pen.start_needle()
        made = sim.firmware.impressions
        assert pen._wait_news(lambda: sim.firmware.impressions >= made + 3, 5.0)
        pen.stop_needle()
        pen.disarm()


def _cut_then(data_dir: Path, tmp_path: Path, between: Callable[[PenSimulator, Path], None]
              ) -> tuple[int, int, str]:
    """A pass cut by a lost link (the pen made 9, 6 recorded), `between`, then the resume:
    (dots on the skin, dots made between, the resume's output)."""
    calibrate_default_pen(data_dir)
    profile = tmp_path / "one.yaml"
    profile.write_text(PROFILE)
    with PenSimulator(seed=0, name="rev18b-work", clock=VirtualClock(host_driven=True)) as sim:
        stall_link_after_dot(sim, 6, 2.5)
        ran = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                        str(SCREENING), "--port", sim.url])
        assert ran.exit_code == 6, ran.output  # link_lost, left open
        # a session's own pass is in its pass log: it writes no needle-work line
        assert not (data_dir / NEEDLE_WORK_NAME).exists()
        made_in_cut_pass = sim.firmware.impressions  # a fresh pen: all of them this pass's
        sim.link.unstall()
        assert CliRunner().invoke(main, ["clear", "--port", sim.url, "--yes"]).exit_code == 0
        between(sim, data_dir)
        made_between = sim.firmware.impressions - made_in_cut_pass
        with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
            (session,) = log.sessions()
        before_resume = sim.firmware.impressions
        resumed = CliRunner().invoke(main, ["run", "--resume", session.session_id, "-t", "ana",
                                            "--port", sim.url])
        assert resumed.exit_code == 0, resumed.output
        return made_in_cut_pass + sim.firmware.impressions - before_resume, made_between, \
            resumed.output


@pytest.mark.parametrize("between", [_unsaved_speed_check, _bare_start],
                         ids=["speed_check_saved_nowhere", "bare_start_outside_a_session"])
def test_needle_work_outside_a_pass_sets_the_pens_count_aside(
        data_dir: Path, tmp_path: Path, between) -> None:
    on_skin, made_between, out = _cut_then(data_dir, tmp_path, between)
    assert made_between > 0
    # the count set aside: the recorded dots count, and the resume says what may play again
    assert on_skin >= PLANNED_DOTS, (on_skin, made_between, out)
    assert "may be played again" in out and "needle ran outside a pass since" in out, out
    (line,) = (data_dir / NEEDLE_WORK_NAME).read_text().splitlines()
    mark = json.loads(line)
    assert mark["counters"]["impressions"] == 9  # the pen's count before it moved the needle


def test_a_needle_work_line_that_cannot_be_read_is_cannot_tell(data_dir: Path,
                                                                tmp_path: Path) -> None:
    def damaged(sim: PenSimulator, data_dir: Path) -> None:
        (data_dir / NEEDLE_WORK_NAME).write_text('{"pen_serial": "SMP-\n')  # torn line

    on_skin, made_between, out = _cut_then(data_dir, tmp_path, damaged)
    assert made_between == 0
    assert "may be played again" in out and "cannot be read" in out, out
    assert on_skin >= PLANNED_DOTS


def test_a_guided_calibration_that_fails_after_its_speed_check_leaves_a_line(
        tmp_path: Path) -> None:
    from smpdevice.paths import data_dir as station_data_dir

    with PenSimulator(seed=3, clock=VirtualClock(host_driven=True)) as sim:
        g = reading(sim)
        db = tmp_path / "c.sqlite"
        answers = [g, g, g, g, g, g, g, g, g,  # zero and depth
                   "", "100", "150",  # tachometer: 105 Hz reads 100 (-4.8 %): FAIL
                   g, g, g]
        result = run(["calibrate", "--port", sim.url, "-t", "ana", "--db", str(db),
                      "--tachometer", *FAST], LiveInput(answers))
        assert result.exit_code == 1 and "nothing was saved" in result.output, result.output
        serial = sim.serial
    marks = [json.loads(s) for s in
             (station_data_dir(create=False) / NEEDLE_WORK_NAME).read_text().splitlines()]
    assert [m["pen_serial"] for m in marks] == [serial]  # one line per calibration
    assert marks[0]["what"] == "a calibration's speed check"
