"""REV3B-7: `smp sessions` on a fresh station (no pass log yet, no anchors file left) is no
read failure: list/verify/export/sync say nothing was recorded yet and exit 0; show an unknown
session exits 2. A log deleted while its anchors file is left stays an error."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.test_passlog import filled


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    data = tmp_path / "data"
    for name in ("SMP_DATA_DIR", "SMP_KEY_DIR", "SMP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    data.mkdir()  # the data directory is there, with nothing in it (no directory: an error,
    return data   # as for a drive not mounted)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_on_a_fresh_station_says_no_sessions_yet(fresh):
    result = run("sessions", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("No sessions yet: nothing has been recorded")
    assert str(fresh / "passlog.sqlite") in result.stdout
    as_json = run("sessions", "list", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    assert not (fresh / "passlog.sqlite").exists()  # reading never creates the log


def test_verify_on_a_fresh_station_has_nothing_to_verify(fresh):
    result = run("sessions", "verify")  # no installation key yet either
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("nothing to verify: No sessions yet")


def test_export_on_a_fresh_station_is_empty_and_says_why(fresh):
    result = run("sessions", "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "No sessions yet" in result.stderr



def test_sync_on_a_fresh_station_has_nothing_to_sync(fresh):
    """As list/verify/export (session 14): it said "no pass log", exit 3, before any
    connection; a data directory not there at all stays that error."""
    url = "postgresql://nobody@127.0.0.1:1/none"  # never reached: nothing to send
    result = run("sessions", "sync", "--to", url)
    assert result.exit_code == 0, result.output
    assert "No sessions yet" in result.stdout and "Nothing to sync" in result.stdout
    assert not (fresh / "passlog.sqlite").exists()
    fresh.rmdir()
    gone = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert gone.exit_code != 0 and "Nothing to sync" not in gone.output, gone.output

def test_show_on_a_fresh_station_is_an_unknown_session(fresh):
    result = run("sessions", "show", "S1234")
    assert result.exit_code == 2
    assert "no session 'S1234'" in result.stderr and "No sessions yet" in result.stderr


def test_a_deleted_log_with_its_anchors_left_is_still_an_error(fresh):
    assert fresh.is_dir()
    (fresh / "passlog.anchors.jsonl").write_text('{"x": 1}\n')
    assert run("sessions", "list").exit_code == 3
    assert run("sessions", "verify", "--trust-log-keys").exit_code in (1, 3)


def test_a_station_with_sessions_lists_them_as_before(fresh):
    assert fresh.is_dir()
    filled(fresh / "passlog.sqlite")
    result = run("sessions", "list", "--json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 1
    assert "No sessions yet" not in result.output


def test_a_deleted_pen_log_is_no_fresh_station(tmp_path):
    """Only a pen's own log ever existed (another chair's run held the station's), deleted
    with its anchors file left: not "nothing recorded yet" but a missing log (exit 1)."""
    import os
    from pathlib import Path

    from smpdevice.passlog import PassLog
    from tests.smpdevice.records.test_review12_fixw_writer import closed_session

    db = Path(os.environ["SMP_DATA_DIR"]) / "passlog-SMP-0001.sqlite"
    with PassLog(db) as log:
        closed_session(log, "C-1")
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    result = CliRunner().invoke(main, ["sessions", "verify"])
    assert result.exit_code == 1 and "missing" in result.output, result.output


def test_no_data_directory_at_all_is_an_error_not_a_fresh_station(fresh):
    """A data directory that is not there (a drive not mounted, a path mistyped) is never
    taken for a station with nothing recorded: `verify` must not say all is well."""
    fresh.rmdir()
    assert run("sessions", "list").exit_code == 3
    assert run("sessions", "verify", "--trust-log-keys").exit_code != 0
    assert not fresh.exists()
