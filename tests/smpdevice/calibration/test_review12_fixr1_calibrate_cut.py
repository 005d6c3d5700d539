"""Review 12 REV3B-1: a calibration the pen cuts (a latched fault, a lost link) is a failed run:
its report, exit 1 ("failed or aborted calibration", README), what to do first (`smp clear
--port P` / `smp info --port P`) and the `smp calibrate` to run again; nothing saved, and the
fault stays latched (nothing clears it for the user). `smp` in this process
(tests/smpdevice/shell.py) on the simulator's virtual clock, real SQLite."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from simulators.faults import ScheduledFault
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from tests.smpdevice import shell
from tests.smpdevice.virtual_time import virtual_sim

REPO = Path(__file__).resolve().parents[3]


def smp(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(tmp_path / "da ta"), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "none.toml"), NO_COLOR="1", COLUMNS="200")
    return shell.smp(args, env=env, cwd=REPO, input="")


@pytest.mark.parametrize(("fault", "first"), [
    ("jam@3", "smp clear --port {port}"),
    ("overcurrent@2", "smp clear --port {port}"),
    ("disconnect@3", "smp info --port {port}"),
])
def test_calibration_cut_by_the_pen_is_a_failed_run_with_what_to_do(tmp_path, fault, first):
    port = f"pensim://?clock=virtual&faults={fault}"
    r = smp(tmp_path, "calibrate", "--port", port, "--auto", "--valid-days", "30")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Result: FAIL; nothing was saved" in r.stdout, r.stdout  # the report, printed
    assert "stopped: " in r.stdout and "the run ended there" in r.stdout, r.stdout
    error = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, r.stderr
    assert first.format(port=shlex.quote(port)) in error[0], error[0]
    again = f"smp calibrate --port {shlex.quote(port)} --auto --valid-days 30"
    assert error[0].endswith(f"run again: {again}"), error[0]
    assert "is fault" not in r.stderr and "is disconnected" not in r.stderr, r.stderr
    listed = smp(tmp_path, "calibrations", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stdout


def test_the_workflow_reports_a_latched_fault_and_leaves_it_latched(tmp_path):
    """The library answers with the report (as for a stop from outside), the pen's latch and
    its needle untouched: only `clear_faults()` (a person's decision) clears it."""
    with virtual_sim(seed=3, schedule=[ScheduledFault(3.0, "jam")]) as sim, \
            PenController.connect(sim.url, clock=sim.clock) as ctl:
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", store=store,
                                 settings=CalibrationSettings(spin_duration_s=1.0))
        assert not report.passed and report.calibration is None and not report.saved
        assert any("JAM" in p and p.startswith("stopped: ") for p in report.problems), \
            report.problems
        assert ctl.state is State.FAULT
        assert ctl.calibration is None
        assert store.latest(ctl.identity.serial) is None
