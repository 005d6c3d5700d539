"""Session 20 (defect 2): `smp run --resume SESSION` with an older copy of the pass log beside
it (a stale backup) printed two `warning:` lines naming that copy, where records/logcopies.py
promises one a process: the resume finds the session by the readers' rule, which names the
copy (read once, as the log written on), then opens the log to write, and the writer named it
again ("... is an older copy ..."). The two now share one record of what this process has
named (`logcopies._named`): one line. A real `smp` process (the promise is per process) on
the built-in simulated pen, virtual time; the set-up runs in this process (shell.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
PORT = "pensim://?clock=virtual"
ANSWERS = ["-t", "ana", "--screening", "examples/screening_clear.yaml"]
PROFILE = "examples/session1_base_density.yaml"


def _jammed_run(env: dict[str, str]) -> str:
    """`smp run` jammed in its second pass: exit 4, its session left open. Its id."""
    ran = shell.smp(["run", PROFILE, "--port", f"{PORT}&faults=jam@4", *ANSWERS], env=env,
                    cwd=ROOT, input="")
    assert ran.returncode == 4 and "INCOMPLETE" in ran.stdout, ran
    return re.search(r"Session (S\w+) INCOMPLETE", ran.stdout).group(1)


def test_a_resume_names_an_older_copy_of_its_log_once(tmp_path):
    data = shell.calibrated(tmp_path / "data", PORT)  # `smp calibrate --port PORT --auto`
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(tmp_path / "key"),
               SMP_CONFIG=str(tmp_path / "no-config.toml"), TMPDIR="/dev/shm")
    session = _jammed_run(env)
    log = data / "passlog.sqlite"
    shutil.copy(log, tmp_path / "backup.sqlite")  # the backup, taken then
    _jammed_run(env)  # the log records on after it
    backup = data / "passlog-backup.sqlite"
    shutil.copy(tmp_path / "backup.sqlite", backup)  # then put back beside it: an older copy
    shell.wall_clock_past_opening(log, session)
    resumed = subprocess.run([sys.executable, "-m", "smpdevice", "run", "--resume", session,
                              "--port", PORT, *ANSWERS], env=env, cwd=ROOT, text=True,
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Resuming session {session}" in resumed.stdout, resumed.stdout
    naming = [line for line in resumed.stderr.splitlines() if str(backup) in line]
    assert len(naming) == 1, resumed.stderr  # was: 2 (the readers' line, then the writer's)
    assert naming[0].startswith("warning: ") and "older copy" in naming[0], naming
    assert f"move {backup} out" in naming[0], naming  # what to do, said once
