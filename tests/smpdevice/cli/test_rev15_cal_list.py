"""Review 15, S6 and S8: `smp calibrations list/show` say what arming says.

S6: a calibration dated after this computer's clock was listed `valid` (list, show, --json)
while `smp calibrate --verify-only` and `smp run` refuse it ("dated ... after this computer's
clock"). The list now asks the arming's own check (Calibration.check_for): `future-dated`, with
the check's sentence as the row's "problem". S8: `--pen ""` (a script's unset `$SERIAL`) said
"No calibrations for any pen" beside valid rows; an empty or blank --pen is refused, exit 2."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
PORT = "pensim://?clock=virtual"


def station(tmp_path: Path) -> dict[str, str]:
    shell.calibrated(tmp_path / "data")
    return {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
            "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml")}


def shift_dates(data: Path, hours: float) -> None:
    """As if made on a PC whose clock was `hours` off: the same record, both dates moved."""
    with sqlite3.connect(data / "calibrations.sqlite") as db:
        cid, body = db.execute("SELECT calibration_id, record_json FROM calibrations").fetchone()
        record = json.loads(body)
        for key in ("created_at", "expires_at"):
            record[key] = (dt.datetime.fromisoformat(record[key])
                           + dt.timedelta(hours=hours)).isoformat()
        db.execute("UPDATE calibrations SET record_json=?, created_at=?, expires_at=? "
                   "WHERE calibration_id=?",
                   (json.dumps(record), record["created_at"], record["expires_at"], cid))


def test_a_future_dated_calibration_is_listed_as_arming_sees_it(tmp_path):
    env = station(tmp_path)
    shift_dates(tmp_path / "data", hours=3)
    verify = shell.smp(("calibrate", "--verify-only", "--auto", "--port", PORT), env=env,
                       cwd=ROOT)
    assert verify.returncode == 2 and "after this computer's clock" in verify.stderr
    listed = shell.smp(("calibrations", "list", "--json"), env=env, cwd=ROOT)
    assert listed.returncode == 0, listed.stderr
    row = json.loads(listed.stdout)[0]
    assert row["status"] == "future-dated", row
    assert "after this computer's clock" in row["problem"]
    table = shell.smp(("calibrations", "list"), env=env, cwd=ROOT)
    assert "future-dated" in table.stdout and " valid " not in table.stdout, table.stdout
    shown = shell.smp(("calibrations", "show", row["calibration_id"]), env=env, cwd=ROOT)
    assert "future-dated" in shown.stdout and "after this computer's clock" in shown.stdout


@pytest.mark.parametrize("hours, status", [(0.5, "valid"), (-24 * 400, "expired")])
def test_within_the_slack_or_past_expiry_the_list_agrees_with_arming(tmp_path, hours, status):
    env = station(tmp_path)
    shift_dates(tmp_path / "data", hours=hours)  # 30 min ahead: within the arming's slack
    listed = shell.smp(("calibrations", "list", "--json"), env=env, cwd=ROOT)
    assert json.loads(listed.stdout)[0]["status"] == status, listed.stdout
    verify = shell.smp(("calibrate", "--verify-only", "--auto", "--port", PORT), env=env,
                       cwd=ROOT)
    assert (verify.returncode == 0) is (status == "valid"), verify.stderr


@pytest.mark.parametrize("pen", ["", "  "])
def test_an_empty_pen_filter_is_refused_not_taken_for_an_empty_database(tmp_path, pen):
    env = station(tmp_path)
    listed = shell.smp(("calibrations", "list", "--pen", pen), env=env, cwd=ROOT)
    assert listed.returncode == 2, (listed.returncode, listed.stdout, listed.stderr)
    assert "for any pen" not in listed.stdout + listed.stderr
    assert len(listed.stderr.strip().splitlines()) == 1 and "--pen" in listed.stderr
    assert listed.stdout == ""
