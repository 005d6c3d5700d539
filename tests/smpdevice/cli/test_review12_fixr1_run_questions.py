"""Review 12 REV3B-4, REV3B-6: `smp run` (new or `--resume`) on a pen with a latched fault says
so in one line with the `smp clear --port PORT` to copy (no Python call, no calibration change
nobody asked for), exit 2; the screening question unanswered (standard input at its end or
closed, as in a script) is one line and exit 1 (README "Common tasks"). `smp` on the
simulator's virtual clock, real SQLite: in this process (tests/smpdevice/shell.py), and as a
real process where its stdin is closed (`<&-`)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from tests.smpdevice import shell

REPO = Path(__file__).resolve().parents[3]
PROFILE = str(REPO / "examples" / "session1_base_density.yaml")
SCREENING = str(REPO / "examples" / "screening_clear.yaml")
VPORT = "pensim://?clock=virtual"
LATCHED = f"{VPORT}&faults=overtemperature@0"


@pytest.fixture
def smp(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(tmp_path / "da ta"), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "none.toml"), NO_COLOR="1", COLUMNS="200")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return shell.smp(args, env=env, cwd=REPO, input=stdin)

    def closed_stdin(*args: str) -> subprocess.CompletedProcess:  # `<&-`, as a script may
        line = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "smpdevice", *args])
        return subprocess.run(["bash", "-c", f"exec {line} <&-"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    run.closed_stdin = closed_stdin  # type: ignore[attr-defined]
    shell.calibrated(tmp_path / "da ta", VPORT)  # `smp calibrate --port VPORT --auto`
    return run


def _error_lines(r: subprocess.CompletedProcess) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


def _names_the_clear_command(error: str) -> bool:
    """The one error line names the latch and `smp clear` for this port, no Python call and
    no calibration change nobody asked for."""
    return (f"smp clear --port {shlex.quote(LATCHED)}" in error
            and "OVERTEMPERATURE" in error and "has a fault latched" in error
            and "clear_faults()" not in error and "calibration" not in error)


def test_a_new_run_on_a_latched_pen_names_the_clear_command(smp):
    r = smp("run", PROFILE, "--port", LATCHED, "-t", "ana", "--screening", SCREENING)
    assert r.returncode == 2, (r.returncode, r.stderr)
    error = _error_lines(r)
    assert len(error) == 1 and _names_the_clear_command(error[0]), r.stderr
    assert "clear_faults()" not in r.stderr


def test_a_resume_on_a_latched_pen_names_the_clear_command(smp, tmp_path):
    r = smp("run", PROFILE, "--port", f"{VPORT}&faults=jam@3", "-t", "ana",
            "--screening", SCREENING)
    assert r.returncode == 4, r.stderr
    sid = r.stdout.split("Session ", 1)[1].split(":", 1)[0]
    shell.wall_clock_past_opening(tmp_path / "da ta" / "passlog.sqlite", sid)
    resumed = smp("run", "--resume", sid, "--port", LATCHED, "-t", "ana")
    assert resumed.returncode == 2, (resumed.returncode, resumed.stderr)
    error = _error_lines(resumed)
    assert len(error) == 1 and _names_the_clear_command(error[0]), resumed.stderr
    assert "clear_faults()" not in resumed.stderr


def test_the_controller_refusal_names_the_command_with_this_port():
    """The API's own refusal (set_calibration on a latched pen) keeps its Python call and
    gives the command with this pen's port, quoted to copy."""
    with PenController.connect(LATCHED) as ctl:
        assert ctl.state is State.FAULT
        with pytest.raises(StateError) as err:
            ctl.set_calibration(None)
    assert f"smp clear --port {shlex.quote(LATCHED)}" in str(err.value), err.value
    assert "`smp clear`;" not in str(err.value)


@pytest.mark.parametrize("closed", [False, True], ids=["at-end", "closed"])
def test_an_unanswered_screening_is_one_line_and_exit_1(smp, closed):
    args = ("run", PROFILE, "--port", VPORT, "-t", "ana")
    r = smp.closed_stdin(*args) if closed else smp(*args)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--screening FILE" in r.stderr, r.stderr
    assert "Session " not in r.stdout, r.stdout  # nothing opened
