"""Review 11, F7 (c): a stderr that cannot be written never changes how `smp` ends.

README.md: "When a command's output cannot be written (a full disk, `> /dev/full`, a reader that
stopped early as in `| head -2`), the command still runs to its end ..., then says so in one
line on stderr and exits with its own non-zero code, or 2 if it would have exited 0." With
stderr gone too (`2>/dev/full`, `2>&1 | head -1` once the reader stopped) that line cannot be
said, but the exit status still can; and a warning or an `error:` line that fails must not turn
`smp run`'s fault (4) into a crash (1) or a hang. These run `smp` as a process: only a real fd 2
can be made unwritable.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.smpdevice.cli.test_cli_run import SCREENING, calibrate_default_pen, short_profile

ROOT = Path(__file__).resolve().parents[3]


def run_smp(args: list[str], data_dir: Path, *, stdout, stderr) -> int:
    env = {**os.environ, "SMP_SIM_CLOCK": "virtual", "SMP_DATA_DIR": str(data_dir),
           "SMP_LOG_LEVEL": "warning"}
    done = subprocess.run([sys.executable, "-m", "smpdevice", *args], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, timeout=120)
    return done.returncode


def test_lost_output_exits_2_when_stderr_is_lost_too(tmp_path):
    with open("/dev/full", "w") as full:
        assert run_smp(["diagram"], tmp_path, stdout=full, stderr=full) == 2


def test_a_warning_that_cannot_be_written_does_not_change_the_exit_status(tmp_path):
    """`smp info` logs nothing at warning; an unknown option's usage error goes to stderr:
    both end with their own status, 0 and 2, whatever happened to stderr."""
    with open("/dev/full", "w") as full:
        assert run_smp(["info", "--port", "pensim://"], tmp_path,
                       stdout=subprocess.DEVNULL, stderr=full) == 0
        assert run_smp(["info", "--no-such-option"], tmp_path,
                       stdout=subprocess.DEVNULL, stderr=full) == 2


def test_a_run_ending_on_a_fault_with_stderr_lost_exits_4_and_records_it(tmp_path):
    calibrate_default_pen(tmp_path)
    profile = short_profile(tmp_path)
    with open("/dev/full", "w") as full:
        code = run_smp(["run", str(profile), "--port", "pensim://?faults=jam@0.2", "-t", "ana",
                        "--screening", str(SCREENING)], tmp_path,
                       stdout=subprocess.DEVNULL, stderr=full)
    assert code == 4  # the jam's own status, not 1 (a traceback) nor a hang
    with sqlite3.connect(tmp_path / "passlog.sqlite") as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM records GROUP BY kind"))
    assert kinds.get("pass_begin", 0) >= 1  # the pass that jammed is recorded, begun and ended
    assert kinds.get("pass_end") == kinds.get("pass_begin"), kinds
