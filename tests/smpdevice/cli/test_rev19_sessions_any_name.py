"""`smp sessions` without --db reads every pass log of the data directory that a resume reads
(sessions/other_logs.py: by content), not only `passlog*.sqlite`: a session recorded with
`smp run --db <data dir>/chair2.sqlite` is listed, shown, exported and verified. A file that
is no pass log is left out silently; a `*.sqlite` that cannot be read is named with why."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session
from tests.smpdevice.records.stations import station_dirs


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def data(tmp_path, monkeypatch):
    data = station_dirs(tmp_path, monkeypatch)
    key = InstallationKey.load_or_create()
    with PassLog(data / "passlog.sqlite", key=key) as log:
        add_session(log)
    with PassLog(data / "chair2.sqlite", key=key) as log:  # `smp run --db <data>/chair2.sqlite`
        add_session(log)
    other = sqlite3.connect(data / "notes.db")  # another program's database: no pass log
    other.execute("CREATE TABLE schema_version (v INTEGER)")
    other.commit()
    other.close()
    (data / "readme.txt").write_text("not a log\n")
    return data


def test_list_show_export_verify_read_a_log_of_any_name(data):
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 0, listed.output
    ids = [s["session_id"] for s in json.loads(listed.stdout)]
    assert len(ids) == 2  # the station's session and chair2's
    assert "warning" not in listed.stderr  # notes.db, readme.txt: no pass logs, silently
    with PassLog(data / "chair2.sqlite", readonly=True) as log:
        chair2 = log.sessions()[0].session_id
    assert chair2 in ids
    shown = smp("sessions", "show", chair2[:8], "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["session_id"] == chair2
    exported = smp("sessions", "export", "--format", "jsonl", "--session", chair2)
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.count(chair2) == 2  # its two passes
    verified = smp("sessions", "verify")
    assert verified.exit_code == 0, verified.output
    assert "chair2.sqlite" in verified.stdout and "notes.db" not in verified.output


def test_an_unreadable_log_of_any_name_is_named_with_why(data):
    (data / "chair3.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)  # damaged
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 3, listed.output  # partial: one log left out
    assert len(json.loads(listed.stdout)) == 2  # the two readable logs still listed
    assert "chair3.sqlite" in listed.stderr and "warning:" in listed.stderr
    assert "notes.db" not in listed.stderr


def test_a_damaged_calibration_database_is_no_pass_log_left_out(data):
    from smpdevice.calibration.store import CALIBRATIONS_NAME
    from smpdevice.paths import CALIBRATIONS_NAME as SKIPPED

    assert SKIPPED == CALIBRATIONS_NAME  # the one name, kept in step
    (data / CALIBRATIONS_NAME).write_bytes(b"SQLite format 3\x00" + b"\0" * 100)
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 0 and "calibrations" not in listed.stderr, listed.output
    assert len(json.loads(listed.stdout)) == 2
