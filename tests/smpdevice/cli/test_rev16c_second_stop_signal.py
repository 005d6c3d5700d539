"""Review 16c: a second stop signal after the first one stopped the session killed `smp` by the
signal
(exit -15 / -1) instead of exit 130.

README, "When a session does not complete": once the session's records are open, SIGTERM and
SIGHUP are taken as Ctrl-C, "the same stop, record, line and exit 130 (`smp run`, `smp run
--service`, `smp demo`)"; Exit status 130. smpdevice/cli/interrupt.py: "Only the first Ctrl-C
counts; more presses are ignored while the needle is stopped and the records are closed".
A service manager sends SIGTERM and then SIGHUP (systemd's SendSIGHUP=yes), or `kill` twice.
Here, once the first SIGTERM's "interrupted:" line is read (needle stopped, session recorded),
SIGTERM/SIGHUP is sent every 10 ms until the command ends: one lands after the session's
deferred section unwound (interrupt.stop_signals put SIGTERM/SIGHUP back to their defaults,
the command not settled) and kills it, -15 / -1, instead of 130.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
SMP = str(Path(sys.executable).parent / "smp")
SESSION = ["examples/session1_base_density.yaml", "-t", "ana",
           "--screening", "examples/screening_clear.yaml"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    key_dir = tmp_path.with_name(tmp_path.name + "-key")  # kept apart from the data (safety.md)
    return dict(env, SMP_DATA_DIR=str(tmp_path), SMP_KEY_DIR=str(key_dir),
                SMP_CONFIG=str(tmp_path / "no-config.toml"), TMPDIR="/dev/shm")


RUN = ["run", SESSION[0], "--port", "pensim://", *SESSION[1:]]  # a real-time pen: still playing


@pytest.mark.parametrize(("second", "command"), [(signal.SIGTERM, RUN),
                                                  (signal.SIGHUP, ["demo"])],
                         ids=["TERM-run", "HUP-demo"])  # the fix is one, at the process's end
# realtime: `smp run`/`smp demo` in a child process, its pen on the wall clock, still playing
@pytest.mark.realtime
def test_a_second_stop_signal_keeps_exit_130(tmp_path, second, command):
    # `smp calibrate --port pensim://?clock=virtual --auto`, once in this process, copied
    env = _env(shell.calibrated(tmp_path / "data", "pensim://?clock=virtual"))
    proc = subprocess.Popen([SMP, *command],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        seen = ""
        while "Session S" not in seen:
            line = proc.stdout.readline()
            assert line, seen
            seen += line
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.readline()  # the session stopped and recorded: its one line
        assert err.startswith("interrupted: "), err
        while proc.poll() is None:  # as the command ends, again and again: nothing changes
            proc.send_signal(second)
            time.sleep(0.01)
    finally:
        err += proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, (proc.returncode, err)
