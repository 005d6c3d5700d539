"""Review 14: `smp demo` stopped mid-session gets `smp run`'s stop, record, line and exit 130.

What was wrong: the demo played its session with Ctrl-C answered at once (a KeyboardInterrupt
wherever it landed) and no report of the run, so SIGINT or SIGTERM mid-session printed only
"interrupted: the command stopped before finishing." README ("When a session does not
complete"): Ctrl-C "stops the needle first, records what ran, and prints one line saying what
state the needle is in and what was recorded"; SIGTERM and SIGHUP give "the same stop, record,
line and exit 130 (`smp run`, `smp run --service`, `smp demo`)". Now the demo's session is
played deferred, stopped at a safe point, and the line is `smp run`'s (RunReport).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from ._rev14_smp import SMP, smp_here, station_env


# realtime: `smp demo` in a child process, its pen on the wall clock (as `smp demo --web`'s tests)
@pytest.mark.realtime
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_demo_stopped_mid_session_names_the_needle_and_the_record(
        tmp_path: Path, signum: int) -> None:
    env = station_env(tmp_path)
    env.pop("SMP_SIM_CLOCK")  # the wall clock: the signal must land while the session plays
    child = subprocess.Popen([*SMP, "demo"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        session_id = ""
        for line in child.stdout:  # wait for the condition: the session is open
            if line.startswith("Session S"):
                session_id = line.split()[1].rstrip(":")
                break
        if not session_id:  # the demo ended first: say how (its status and its words)
            rest, err = child.communicate(timeout=30)
            raise AssertionError(f"the demo never opened its session: exit "
                                 f"{child.returncode}; stdout end {rest[-800:]!r}; "
                                 f"stderr {err[-1500:]!r}")
        child.send_signal(signum)
        out, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, out + err
    lines = [text for text in (out + err).splitlines() if text.startswith("interrupted:")]
    assert len(lines) == 1, out + err
    assert "needle" in lines[0] and session_id in lines[0], lines[0]
    # what the line says was recorded is in the log: the session, ended as interrupted (read
    # in this process: the stopped demo is the process under test, not the reading)
    shown = smp_here(env, "sessions", "show", session_id)
    assert shown.returncode == 0, shown.stderr
    assert "interrupted" in shown.stdout, shown.stdout
