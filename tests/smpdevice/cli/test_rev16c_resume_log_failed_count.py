"""Review 16c: a resumed run whose pass log cannot be written (a full disk) miscounted the
session: it
says "0 of 4 planned passes completed" although pass 1 completed (and is recorded) in the first
part, and names the pass it could not record "pass 1" although the resume plays pass 2.

README, "When a session does not complete": "A pass log that cannot be written mid-session (a
full disk) stops the needle first; the session is left OPEN as far as it was recorded ... and
`smp run` (also through `--service`) says INCOMPLETE, how many passes completed, and the `smp
run --resume` command". Through the service the same resume says "N of 4" counting every part
(review 16); cli/playing.py log_failed counts only `session.results` of this run's part.
The disk is made full with RLIMIT_FSIZE (40 000 bytes: the log opens, its next pages do not).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
SMP = str(Path(sys.executable).parent / "smp")
PORT = "pensim://?clock=virtual"
ANSWERS = ["-t", "ana", "--screening", "examples/screening_clear.yaml"]
LIMIT = 40_000


def _full_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _smp(env, *args: str, full: bool = False) -> subprocess.CompletedProcess:
    # under the file-size limit a child writes no byte-code: a .pyc cut at the limit in the
    # shared cache would break every later import of that module (session 13)
    return subprocess.run([SMP, *args], env=dict(env, PYTHONDONTWRITEBYTECODE="1"), cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=_full_disk if full else None)


def test_a_resume_whose_log_fails_counts_the_sessions_completed_passes(tmp_path):
    # the calibration and the first, jammed part in this process (shell.py); the resume under
    # the file-size limit is the process under test
    data = shell.calibrated(tmp_path / "data", PORT)  # `smp calibrate --port PORT --auto`
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(data / "key"),
               SMP_CONFIG=str(data / "no-config.toml"), TMPDIR="/dev/shm")
    first = shell.smp(["run", "examples/session1_base_density.yaml", "--port",
                       f"{PORT}&faults=jam@4", *ANSWERS], env=env, cwd=ROOT, input="")
    assert first.returncode == 4 and "1 of 4 planned passes completed" in first.stdout, first
    session = re.search(r"Session (S\w+) INCOMPLETE", first.stdout).group(1)
    shell.wall_clock_past_opening(data / "passlog.sqlite", session)
    resumed = _smp(env, "run", "--resume", session, "--port", PORT, *ANSWERS, full=True)
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 3 and "pass log could not be written" in said, said
    assert "3 of 4 planned passes left (pass 2, 3, 4)" in said, said
    assert "pass 1: not recorded" not in said, said  # pass 1 is recorded: completed
    assert "1 of 4 planned passes completed" in said, said
