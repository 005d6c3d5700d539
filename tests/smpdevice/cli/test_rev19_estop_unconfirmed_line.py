"""`smp estop` on a pen that never confirms the E-stop (review 19, finding 6).

README exit status 6 ("`smp estop`: the pen could not be reached") held, but the one line it
printed embedded the controller's own text: the ESTOP "is still re-sent" (true only while the
controller lives: this process exits at once, nothing re-sends it), a doubled full stop
("Check the cable.. The pen stops ...") and the lease sentence twice. Real process, a
simulated pen that loses every ESTOP, or hears it too late (docs/simulator.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SMP = Path(sys.executable).with_name("smp")


@pytest.mark.parametrize("faults", ["drop_type=ESTOP", "delay_type=ESTOP:3"])
def test_an_unconfirmed_estop_line_says_what_is_true_once_the_process_exits(tmp_path, faults):
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"), "TMPDIR": str(tmp_path)}
    env.pop("SMP_SERVICE", None)
    # the pen on the clock `smp estop` drives: its connect and retries are measured on it, so
    # a loaded machine cannot make them miss (on the wall clock a child's pen can go unscheduled)
    done = subprocess.run([str(SMP), "estop", "--port",
                           f"pensim://?faults={faults}&clock=virtual"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 6, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, done.stderr
    line = error[0]
    assert "NOT confirmed" in line and ".." not in line, line
    assert "still re-sent" not in line and "nothing sends it again" in line, line
    assert line.count("lease runs out") == 1 and "(within " in line, line
    assert line.count("Use the pen's own stop or pull its power") == 1, line
