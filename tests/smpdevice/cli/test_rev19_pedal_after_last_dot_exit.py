"""Review 19 QA (README "footswitch"): a release ends the pass `footswitch_released` and `smp
run` stops there (session outcome interrupted, exit 130), the session left open. A release
that cuts a pass after its last dot (the pass counts as completed, README "Resuming") with
passes left to play must exit 130 too, not 7 ("ended early for another reason"); a session
whose last planned pass it was ends completed (exit 0, test_rev17_pedal_after_last_dot)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.outcomes import SessionOutcome, classify_session, stopped_for
from tests.smpdevice import shell
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
)
from tests.smpdevice.cli.test_rev17_pedal_after_last_dot import PROFILE, run_lifting_after_dot_3

ROOT = Path(__file__).resolve().parents[3]
PEN = "pensim://?seed=3&clock=virtual"
TWO_PASSES = PROFILE + "  - {zone: crown, duration_s: 0.9}\n"


def test_pedal_lifted_after_a_pass_last_dot_with_passes_left_exits_130(
        data_dir: Path, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    ran, session, passes = run_lifting_after_dot_3(data_dir, tmp_path / "two.yaml", TWO_PASSES,
                                                   monkeypatch)
    assert passes == [("footswitch_released", 3)], (passes, ran.output)  # the case at hand
    assert "PAUSED on the footswitch" in ran.output, ran.output
    assert session.closed_at is None, ran.output  # left open, to be resumed
    assert ran.exit_code == 130, ran.output


def test_reviewers_pedal_windows_around_pass_1_last_dot_exit_130(tmp_path: Path) -> None:
    """The reviewer's case: session1's pass 1 cut by the pedal at and after its last dot. The
    promise is the exit status `smp run` gives, not anything of a process: `smp` runs in this
    process (tests/smpdevice/shell.py, as subprocess.run answers), the calibration done once."""
    statuses = {}
    for at_s in ("3.10", "3.18"):  # around pass 1's last dot (~3.1 s pen time)
        data = shell.calibrated(tmp_path / at_s, PEN)  # `smp calibrate --port PEN --auto`
        env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_FOOTSWITCH": "required"}
        env.pop("SMP_SIM_CLOCK", None)
        run = shell.smp(
            ["run", "examples/session1_base_density.yaml", "--port",
             f"{PEN}&faults=pedal_up@{at_s}-{float(at_s) + 0.03:.2f}", "-t", "ana",
             "--screening", "examples/screening_clear.yaml"],
            env=env, cwd=ROOT, input="")
        assert "PAUSED on the footswitch" in run.stdout, run.stdout[-1500:]
        statuses[at_s] = run.returncode
    assert statuses == {"3.10": 130, "3.18": 130}


@pytest.mark.parametrize(("stopped_by", "pen_state", "expected"), [
    ("footswitch_released", "armed", SessionOutcome.interrupted),
    ("footswitch_released", "fault", SessionOutcome.fault),  # a latch says why first
    ("fault", "idle", SessionOutcome.fault),
    ("stopped", "idle", SessionOutcome.incomplete),  # the controller's stop: incomplete
    ("controller_crashed", "idle", SessionOutcome.incomplete),
    (None, "idle", SessionOutcome.incomplete),
])
def test_classify_session_takes_why_the_last_pass_stopped(stopped_by, pen_state, expected):
    # pass 1 judged completed (cut after its last dot), 3 more planned
    assert classify_session(["completed"], 4, pen_state=pen_state,
                            stopped_by=stopped_by) is expected
    # every planned pass done: completed, whatever cut the last one
    assert classify_session(["completed"], 1, pen_state="idle",
                            stopped_by=stopped_by) is SessionOutcome.completed


def test_stopped_for_changes_only_incomplete():
    assert stopped_for(SessionOutcome.fault, "footswitch_released") is SessionOutcome.fault
    assert stopped_for(SessionOutcome.incomplete, "footswitch_released") \
        is SessionOutcome.interrupted
    with pytest.raises(InvalidArgument, match="stopped_by='Completed' is refused"):
        classify_session(["completed"], 2, stopped_by="Completed")
