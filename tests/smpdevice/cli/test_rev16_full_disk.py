"""Review 16, finding 2: a pass log that fills its disk mid-session: `smp run` still says the
session is INCOMPLETE, with the commands to run next (smpdevice/cli/playing.py, log_failed).

README "When a session does not complete": a session that does not play every planned pass is
INCOMPLETE: `smp run` says so in its summary, with the commands to run next; Exit status 3: the
pass log cannot be written (the needle was stopped first). Here the log's file may not grow past
a limit (RLIMIT_FSIZE: a full disk for this process), met as pass 2 begins (100 KiB) or while it
runs (110 KiB). The run exits 3, but prints no summary at all: only "The session could not be
closed cleanly: ... still has 1 pass(es) in progress: end them before closing the session", no
INCOMPLETE, no `smp run --resume` command for the session left open (which does resume fine
once the disk has room), and not even pass 1's own "completed" line. At 300 KiB every pass
completes and the close fails: the same summary (no sheet: the session is left open).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
SMP = str(Path(sys.executable).parent / "smp")
PORT = "pensim://?clock=virtual"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (
        "SMP_PORT", "SMP_SERVICE", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH")}
    return dict(env, SMP_DATA_DIR=str(tmp_path), SMP_KEY_DIR=str(tmp_path / "key"),
                SMP_CONFIG=str(tmp_path / "no-config.toml"))


@pytest.mark.parametrize("limit_kib", [100, 110, 300], ids=["at_pass_begin", "mid_pass",
                                                              "at_close"])
def test_a_full_disk_mid_session_still_says_incomplete_and_how_to_resume(tmp_path, limit_kib):
    # set-up and read-back run in this process (tests/smpdevice/shell.py): only the run under
    # the file-size limit is what is tested as a process
    data = shell.calibrated(tmp_path / "data", PORT)  # `smp calibrate --port PORT --auto`
    env = _env(data)
    limit = limit_kib * 1024

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = subprocess.run([SMP, "run", "examples/session1_base_density.yaml", "--port", PORT,
                          "-t", "ana", "--screening", "examples/screening_clear.yaml"],
                         env=dict(env, PYTHONDONTWRITEBYTECODE="1"), cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         preexec_fn=full_disk)  # (no .pyc cut at the limit in the cache)
    assert run.returncode == 3, (run.returncode, run.stdout, run.stderr)
    listed = shell.smp(["sessions", "list", "--json"], env=env, cwd=ROOT)
    (session,) = json.loads(listed.stdout)
    assert session["closed_at"] is None and session["pass_count"] >= 1  # left open, pass 1 kept
    said = run.stdout + run.stderr
    assert "INCOMPLETE" in said, said
    assert f"--resume {session['session_id']}" in said, said
    assert "end them before closing" not in said, said
    assert "the pass log could not be written" in said and "needle is stopped" in said, said
    assert "pass 1 top" in run.stdout and "completed" in run.stdout, run.stdout  # its line
    completed = sum(1 for p in json.loads(shell.smp(
        ["sessions", "show", session["session_id"], "--json"], env=env, cwd=ROOT).stdout)[
        "passes"] if p["outcome"] == "completed")
    assert f"{completed} of 4 planned passes completed" in said, said
    # the command it printed works once the disk has room: the session resumes (or closes)
    shell.wall_clock_past_opening(data / "passlog.sqlite", session["session_id"])
    again = shell.smp(["run", "--resume", session["session_id"], "--port", PORT,
                       "-t", "ana", "--screening", "examples/screening_clear.yaml"],
                      env=env, cwd=ROOT, input="")
    assert again.returncode == 0, (again.stdout, again.stderr)
    assert "Record receipt" in again.stdout, again.stdout
