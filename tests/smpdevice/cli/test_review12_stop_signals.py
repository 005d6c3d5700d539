"""SIGTERM and SIGHUP during `smp demo`'s session and `smp run --service`'s are taken as Ctrl-C,
as during `smp run`'s (review 12, REV3A-4/5): the needle stops, the session is recorded
(`interrupted`), one line, exit 130. Before, both processes died at once (-15): the demo's pass
was left open, and through the service the session was judged by the service alone. Real
processes; pens on the wall clock, so in the realtime pass."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from simulators import PenSimulator
from smpdevice.passlog import PassLog
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.cli.test_cli_service import ROOT, WAIT_S, env  # noqa: F401  (fixture)
from tests.smpdevice.conftest import true_calibration

pytestmark = pytest.mark.realtime


def demo_until_a_pass_runs(data: Path) -> tuple[subprocess.Popen, list[str]]:
    demo_env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_LOG_LEVEL": "info",
                "SMP_LOG_FORMAT": "json"}
    child = subprocess.Popen([sys.executable, "-m", "smpdevice", "demo", "--quick"],
                             env=demo_env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    seen = threading.Event()
    opened: list[bool] = []

    def read() -> None:
        for line in child.stdout:
            lines.append(line)
            opened.append('"event": "session opened"' in line or bool(opened and opened[-1]))
            # the needle running in the session's pass (the calibration's spins run it too:
            # a signal there is not what is tested here)
            if opened[-1] and '"new": "running"' in line:
                seen.set()
        seen.set()

    threading.Thread(target=read, daemon=True).start()
    assert seen.wait(120), "".join(lines)
    return child, lines


@pytest.mark.parametrize("signum", [signal.SIGTERM])  # SIGHUP: test_review12_sigterm_run.py
def test_a_stop_signal_mid_pass_of_smp_demo_stops_and_records(tmp_path, signum):
    data = tmp_path / "data"
    data.mkdir()
    child, lines = demo_until_a_pass_runs(data)
    child.send_signal(signum)
    code = child.wait(timeout=120)
    out = "".join(lines)
    assert code == 130, (code, out[-3000:])
    assert "Traceback" not in out
    with PassLog(data / "passlog.sqlite", readonly=True) as log:
        passes = log.passes()
        assert passes and all(p.outcome is not None for p in passes), passes
        assert all(p.outcome != "controller_crashed" for p in passes)
        assert log.sessions()[0].closed_at is not None


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_sigterm_to_smp_run_service_mid_pass_is_taken_as_ctrl_c(
        env: dict[str, str]) -> None:  # noqa: F811 (the fixture)
    with PenSimulator(seed=0) as sim, ServiceHandle(ServiceOptions(
            port=sim.url, listen="127.0.0.1:0", data_dir=Path(env["SMP_DATA_DIR"]),
            calibration=true_calibration(sim))) as handle:
        work = handle.server.service.work
        run = subprocess.Popen([sys.executable, "-m", "smpdevice", "run",
                                "examples/session1_base_density.yaml", "--service", handle.url,
                                "-t", "ana", "--screening", "examples/screening_clear.yaml"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        _wait(lambda: sim.firmware.state.name == "RUNNING" or run.poll() is not None,
              "the needle running")
        assert run.poll() is None, run.communicate()
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=WAIT_S)
        _wait(lambda: not work.busy(), "the session to end")
        status = work.status() or {}
    assert run.returncode == 130, (run.returncode, out[-1500:], err[-1500:], status)
    assert "Traceback" not in err, err
    assert "the needle is stopped" in err, err
    assert status.get("outcome") == "interrupted", status
