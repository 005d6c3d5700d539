"""`smp sessions verify --against` reports a log the central store holds for this
installation that is no longer in the data directory (review 7b, R12). Real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner

from smpdevice.cli import main as cli
from smpdevice.passlog import PassLog
from smpdevice.records.central import sync
from smpdevice.records.keys import InstallationKey
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

pytest.importorskip("psycopg")


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))  # a private installation key
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("SMP_DATA_DIR", str(path))
    return path


def _log(path, sessions: int, key: InstallationKey | None = None) -> str:
    with (PassLog(path, key=key) if key else PassLog.open(path)) as log:
        for _ in range(sessions):
            sid = open_session(log)
            log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
        return log.log_id


def verify(*args: str):
    return CliRunner().invoke(cli, ["sessions", "verify", *args])


def test_a_synced_log_deleted_from_the_data_directory_is_reported(data, url):
    _log(data / "passlog.sqlite", 1)
    pen_id = _log(data / "passlog-SMP-0001.sqlite", 2)
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    before = verify("--against", url)
    assert before.exit_code == 0, before.output
    assert "every log the central store holds for these keys is here" in before.output
    for gone in data.glob("passlog-SMP-0001*"):  # the log and its anchors file
        gone.unlink()
    after = verify("--against", url)
    assert after.exit_code == 1, after.output
    assert f"log {pen_id} (up to record " in after.output and "removed" in after.output
    # One log named with --db is checked alone: the others are not its business.
    alone = verify("--db", str(data / "passlog.sqlite"), "--against", url)
    assert alone.exit_code == 0, alone.output


def test_another_installations_logs_are_not_this_directorys(data, url, tmp_path):
    _log(data / "passlog.sqlite", 1)
    stranger = InstallationKey.generate()
    other = tmp_path / "other.sqlite"
    _log(other, 1, key=stranger)
    with PassLog(other, readonly=True) as log:
        sync(log, url, stranger)  # another PC of the chain, same central store
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    result = verify("--against", url)
    assert result.exit_code == 0, result.output


def test_the_station_log_deleted_while_a_pen_log_stays_is_reported(data, url):
    station_id = _log(data / "passlog.sqlite", 1)
    _log(data / "passlog-SMP-0001.sqlite", 1)
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    for gone in data.glob("passlog.*"):
        gone.unlink()
    result = verify("--against", url)
    assert result.exit_code == 1 and f"log {station_id} " in result.output, result.output
