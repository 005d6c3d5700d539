"""What the `smp` program imports (issue 13: start-up): a command reads the pass log without
the signing stack, and its help without the pen's; the detail log registers no logger.

Real processes started as `python -m smpdevice` is (`smpdevice.entry.main`), their
`sys.modules` read at the end: no timings.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from smpdevice.logs import DETAIL_LOG_NAME, DetailLog
from tests.smpdevice.records.test_passlog import filled

# What a command that reads the pass log, or only shows its help, never needs.
NOT_FOR_READING = ("pydantic", "multiprocessing", "cryptography",
                   "cryptography.hazmat.primitives.serialization.ssh")

_PROGRAM = """
import json, runpy, sys
sys.argv = ["smp", *sys.argv[1:]]
try:
    runpy.run_module("smpdevice", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.__stderr__.write("\\nRESULT=" + json.dumps({"exit": code, "modules": sorted(sys.modules)}))
"""


def _smp(*args: str, data: Path) -> tuple[int, set[str], str]:
    """`smp ARGS` in a fresh process on the data directory `data`: exit code, the modules it
    had loaded when it ended, its stdout."""
    env = {**os.environ, "SMP_DATA_DIR": str(data)}
    done = subprocess.run([sys.executable, "-c", _PROGRAM, *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    assert "RESULT=" in done.stderr, done.stderr[-2000:]
    result = json.loads(done.stderr.rsplit("RESULT=", 1)[1])
    return result["exit"], set(result["modules"]), done.stdout


def test_listing_sessions_of_a_new_station_loads_no_log_or_key_stack(tmp_path):
    (tmp_path / "data").mkdir()
    code, modules, out = _smp("sessions", "list", data=tmp_path / "data")
    assert code == 0
    assert out.startswith("No sessions yet: nothing has been recorded at this station")
    assert not set(NOT_FOR_READING) & modules, sorted(set(NOT_FOR_READING) & modules)
    assert "smpdevice.records.sqlite" not in modules
    assert "smpdevice.logs" in modules  # the log set-up ran


def test_listing_recorded_sessions_checks_no_signature(tmp_path):
    """Reading the pass log needs SQLite, never the installation key's cryptography."""
    data = tmp_path / "data"
    data.mkdir()
    sid, _passes = filled(data / "passlog.sqlite")
    code, modules, out = _smp("sessions", "list", data=data)
    assert code == 0
    assert sid in out and "1 sessions" in out
    assert not set(NOT_FOR_READING) & modules, sorted(set(NOT_FOR_READING) & modules)


def test_a_command_s_help_loads_no_logging_stack(tmp_path):
    code, modules, out = _smp("run", "--help", data=tmp_path / "data")
    assert code == 0
    assert out.startswith("Usage: ") and " run [OPTIONS] [PROFILE]" in out
    assert not {"pydantic", "smpdevice.link.wire", "cryptography"} & modules


def test_a_service_client_s_calibration_report_loads_no_controller(tmp_path):
    """`smp calibrate --service` formats the service's calibration report: the report's
    module, not the controller's states or the link."""
    (tmp_path / "data").mkdir()
    code, modules, _out = _smp("calibrate", "--service", "ws://127.0.0.1:9/rpc", "--auto",
                               data=tmp_path / "data")
    assert code == 2  # no service token here: said in one line, before any connection
    assert "smpdevice.calibration.report" in modules
    assert not {"smpdevice.link.wire", "smpdevice.control.states",
                "transitions"} & modules


def test_a_detail_log_registers_no_named_logger(tmp_path, monkeypatch):
    """A detail log per command, in a process that runs many (the service, a test worker),
    leaves nothing in the logging module's registry; its lines are the events as JSON."""
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    before = set(logging.root.manager.loggerDict)
    detail = DetailLog(logging.INFO)
    try:
        detail.write({"event": "one", "note": "50% of it", "args": "%s %d"})
        detail.write({"event": "two"})
    finally:
        detail.close()
    assert set(logging.root.manager.loggerDict) == before
    lines = (tmp_path / DETAIL_LOG_NAME).read_text().splitlines()
    assert lines == [json.dumps({"event": "one", "note": "50% of it", "args": "%s %d"}),
                     json.dumps({"event": "two"})]
    assert detail.error is None
