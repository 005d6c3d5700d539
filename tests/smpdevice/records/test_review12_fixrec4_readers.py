"""Review 12 (REVD-14, REVD-16): the readers never write, and a damaged record is one line.

docs/integration.md: "The readers (`smp sessions ...`, `smp calibrations list`,
`PassLog(path, readonly=True)`) never write: they work on a read-only mount or directory (a
backup)". README "Exit status": 3, the pass log cannot be read; errors are one line.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

READERS = [("sessions", "list"), ("sessions", "list", "--json"), ("sessions", "verify"),
           ("sessions", "export", "--format", "csv"), ("calibrations", "list")]


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


def _station(data: Path, sessions: int = 2, passes: int = 2) -> Path:
    """A data directory as a station leaves it: a pass log and the calibrations."""
    data.mkdir(parents=True, exist_ok=True)
    with PassLog(data / "passlog.sqlite") as log:  # the test installation's key
        for _ in range(sessions):
            sid = open_session(log)
            for i in range(passes):
                log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(),
                             ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial="PEN-1", technician="ana", offset_mm=0.0, gain=1.0,
        **fit_points(0.0, 1.0)))
    return data


@pytest.mark.parametrize("command", READERS)
def test_a_reader_creates_no_data_directory(tmp_path, monkeypatch, command):
    """A drive not mounted: the reader says so and leaves no empty directory in its place."""
    absent = tmp_path / "not-mounted" / "smp"
    monkeypatch.setenv("SMP_DATA_DIR", str(absent))
    result = smp(*command)
    if command[0] == "calibrations":  # a station with no data directory yet has none
        assert result.exit_code == 0 and "No calibrations" in result.output, result.output
    else:
        assert result.exit_code != 0, result.output
    assert not absent.exists() and not absent.parent.exists()


@pytest.mark.parametrize("command", READERS)
def test_a_reader_leaves_a_backup_directorys_mode_alone(tmp_path, monkeypatch, command):
    """A backup copied with cp/rsync is 0755: reading it never re-modes it."""
    backup = tmp_path / "backup"
    shutil.copytree(_station(tmp_path / "data"), backup)
    os.chmod(backup, 0o755)
    monkeypatch.setenv("SMP_DATA_DIR", str(backup))
    result = smp(*command)
    assert result.exit_code == 0, result.output
    assert oct(backup.stat().st_mode & 0o777) == "0o755"
    assert not (backup / "smp.log").exists()  # nor a detail log written into the backup


def test_a_writer_still_makes_the_data_directory_private(tmp_path, monkeypatch):
    """Safety kept: the writers (here `smp demo`'s stores) make and tighten it (0700)."""
    from smpdevice.paths import data_dir

    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    monkeypatch.setenv("SMP_DATA_DIR", str(loose))
    assert data_dir(create=False) == loose and loose.stat().st_mode & 0o777 == 0o755
    assert data_dir() == loose and loose.stat().st_mode & 0o777 == 0o700
    fresh = tmp_path / "fresh" / "smp"
    monkeypatch.setenv("SMP_DATA_DIR", str(fresh))
    CalibrationStore()  # a writer
    assert fresh.stat().st_mode & 0o777 == 0o700


# ------------------------------------------------------------------ REVD-16: damaged bodies
def _damage(db: Path, kind: str, body: str) -> int:
    conn = sqlite3.connect(db)
    try:
        seq = conn.execute("SELECT min(seq) FROM records WHERE kind = ?", (kind,)).fetchone()[0]
        conn.execute("UPDATE records SET body = ? WHERE seq = ?", (body, seq))
        conn.commit()
    finally:
        conn.close()
    return seq


COMMANDS = [("sessions", "list"), ("sessions", "list", "--json"), ("sessions", "show", "S"),
            ("sessions", "export", "--format", "csv"), ("sessions", "export", "--format",
                                                        "jsonl")]


@pytest.mark.parametrize("body", ["not json", "{}", "[1, 2]", '{"client_ref": "C-1"}'])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_damaged_session_opening_is_one_line_exit_3(tmp_path, body, command):
    db = _station(tmp_path / "data", sessions=1) / "passlog.sqlite"
    seq = _damage(db, "session_open", body)
    result = smp(*command, "--db", str(db))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code == 3, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert str(db) in lines[0] and f"record {seq}" in lines[0], lines[0]
    assert "restore it from a backup" in lines[0], lines[0]


@pytest.mark.parametrize("kind, body", [("pass_begin", "{}"), ("pass_begin", "nope"),
                                        ("pass_end", '{"stats": 5}'), ("pass_end", "{}"),
                                        ("session_close", "{}"),
                                        ("session_close", '{"summary": {}}')])
def test_a_damaged_pass_or_close_is_named_by_show(tmp_path, kind, body):
    db = _station(tmp_path / "data", sessions=1) / "passlog.sqlite"
    seq = _damage(db, kind, body)
    result = smp("sessions", "show", "S", "--db", str(db))
    assert result.exit_code == 3, result.output
    assert f"record {seq}" in result.output and "Traceback" not in result.output


def test_a_pass_with_no_start_time_in_a_dated_csv_export_is_exit_3(tmp_path):
    """`--since` filters by each pass's start: a pass without one is said, never a
    traceback."""
    db = _station(tmp_path / "data", sessions=1) / "passlog.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE records SET body = json_remove(body, '$.started_at') "
                 "WHERE kind = 'pass_begin'")
    conn.commit()
    conn.close()
    result = smp("sessions", "export", "--format", "csv", "--since", "2020-01-01", "--db",
                 str(db))
    assert result.exit_code == 3, result.output
    assert "started_at" in result.output and "Traceback" not in result.output


def test_an_intact_log_still_exports_and_lists(tmp_path):
    db = _station(tmp_path / "data", sessions=1) / "passlog.sqlite"
    for command in COMMANDS:
        result = smp(*command, "--db", str(db))
        assert result.exit_code == 0, (command, result.output)
