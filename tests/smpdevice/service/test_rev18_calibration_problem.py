"""Known defect (closing 17, "Left"): a service whose pen's stored calibration could not be
used (expired, future-dated, a damaged row) started uncalibrated and said why only in its log;
`smp info --service` showed "calibration: none" and nothing else. Now the service's
`pen.identity` answer carries `calibration_problem` (why, while the pen is uncalibrated) and
`smp info --service` prints it, and its JSON holds it; the refusal itself is unchanged (the
service starts, nothing installed). A real service on a simulated pen, real SQLite."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators import PenSimulator
from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

CASES = {  # created (from now), valid for, damage the row, what the problem says
    "expired": (-timedelta(days=31), timedelta(days=30), False, "expired"),
    "future-dated": (timedelta(hours=3), timedelta(days=30), False,
                     "after this computer's clock"),
    "damaged": (timedelta(0), timedelta(days=30), True, "damaged"),
}


def _info(url: str, data_dir: Path, monkeypatch, *extra: str):
    monkeypatch.setenv("SMP_DATA_DIR", str(data_dir))  # the viewer token's directory
    result = CliRunner().invoke(main, ["info", "--service", url, *extra])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_why_the_stored_calibration_was_not_used_is_answered_and_shown(tmp_path, monkeypatch,
                                                                        case):
    created, valid, damage, why = case
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with PenSimulator(seed=5) as sim:
        at = datetime.now(UTC) + created
        cal = Calibration.model_validate({**true_calibration(sim).model_dump(),
                                          "simulated": True, "created_at": at,
                                          "expires_at": at + valid})
        db = data_dir / CALIBRATIONS_NAME
        CalibrationStore(db).save(cal)
        if damage:  # a figure edited in the file: the row no longer fits its points
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE calibrations SET record_json = "
                             "json_set(record_json, '$.gain', 1.7)")
        options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                 lease_ms=1000)
        with ServiceHandle(options) as handle:
            installed = handle.pen.calibration
            text = _info(handle.url, data_dir, monkeypatch)
            shown = json.loads(_info(handle.url, data_dir, monkeypatch, "--json"))
    assert installed is None  # the refusal itself is unchanged: started, nothing installed
    assert "calibration: none" in text, text
    line = [x for x in text.splitlines() if "calibration problem:" in x]
    assert line and cal.calibration_id in line[0] and why in line[0], text
    assert "smp calibrate --service" in line[0], line  # the service holds the port
    assert why in (shown["calibration_problem"] or ""), shown


def test_a_pen_with_a_usable_calibration_has_no_problem(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with PenSimulator(seed=5) as sim:
        cal = Calibration.model_validate({**true_calibration(sim).model_dump(),
                                          "simulated": True})
        CalibrationStore(data_dir / CALIBRATIONS_NAME).save(cal)
        with ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, lease_ms=1000)) as handle:
            text = _info(handle.url, data_dir, monkeypatch)
            shown = json.loads(_info(handle.url, data_dir, monkeypatch, "--json"))
    assert f"calibration: {cal.calibration_id}" in text and "problem" not in text, text
    assert shown["calibration_problem"] is None
