"""Review 12 REV3B-9: Ctrl-C or SIGTERM as `smp run --resume` begins (nothing of the resumed
part played yet) stops and closes the session as `interrupted`, exit 130, as in any run; not as
the earlier part's fault with exit 4 and "Ctrl-C came too late".

The resumed part runs the pen on the wall clock so the signal lands before its first pass ends;
the test waits on the printed line, never on a fixed sleep. The resumed run is a real `smp`
process (the signal is the point); the calibration, the faulted first part and `sessions show`
run in this process (tests/smpdevice/shell.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.smpdevice import shell

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
SMP = [sys.executable, "-m", "smpdevice"]
VPORT = "pensim://?clock=virtual"


def smp(env: dict, *args: str) -> subprocess.CompletedProcess:
    return shell.smp(args, env=env, cwd=REPO, input="")


# realtime: the resume in a child process on the wall clock, so the signal lands in its first pass
@pytest.mark.realtime
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_as_the_resume_begins_closes_interrupted_130(tmp_path, sig):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(tmp_path / "data"), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "none.toml"), NO_COLOR="1", COLUMNS="200",
               PYTHONUNBUFFERED="1")
    shell.calibrated(tmp_path / "data", VPORT)  # `smp calibrate --port VPORT --auto`
    r = smp(env, "run", str(EXAMPLES / "session1_base_density.yaml"), "--port",
            f"{VPORT}&faults=jam@1", "-t", "ana",
            "--screening", str(EXAMPLES / "screening_clear.yaml"))
    assert r.returncode == 4, r.stdout + r.stderr  # left open on the fault
    sid = r.stdout.split("Session ", 1)[1].split(":", 1)[0]
    shell.wall_clock_past_opening(tmp_path / "data" / "passlog.sqlite", sid)
    p = subprocess.Popen([*SMP, "run", "--resume", sid, "--port", "pensim://", "-t", "ana"],
                         env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    assert p.stdout is not None
    seen = []
    for line in p.stdout:
        seen.append(line)
        if line.startswith("Resuming session"):
            p.send_signal(sig)
            break
    rest, _ = p.communicate(timeout=120)
    out = "".join(seen) + rest
    assert p.returncode == 130, (p.returncode, out[-1500:])
    assert "came too late" not in out and "ended by a fault" not in out, out[-1500:]
    show = json.loads(smp(env, "sessions", "show", sid, "--json").stdout)
    assert show["closed_at"] and show["summary"]["outcome"] == "interrupted", show["summary"]
