"""review15 F2: `smp sessions sync` checks the log as `verify` does before it sends anything:
the anchors file beside it (a log replaced by its own older copy) and the file's pages
(`PRAGMA quick_check`). Real SQLite, real PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.conftest import server_url, url  # noqa: F401 - fixtures
from tests.smpdevice.records.test_records_exports import session_by
from tests.smpdevice.records.test_rev15_damaged_index import damage_index


def _station(data, *clients):
    with PassLog(data / "passlog.sqlite") as log:
        for client in clients:
            sid = session_by(log, "ana", client)
            log.close_session(sid, closed_at=datetime.now(UTC), summary={})


def _rolled_back_station(data):
    """The data directory's log replaced by its own copy taken after the first session; the
    anchors file (with both receipts) left as the writer left it."""
    old = data.parent / "older-copy"
    old.mkdir()
    _station(data, "C-0042")
    for name in ("passlog.sqlite", "passlog.sqlite-wal"):
        if (data / name).exists():
            shutil.copy2(data / name, old / name)
    _station(data, "C-0043")
    for name in ("passlog.sqlite-wal", "passlog.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    for name in ("passlog.sqlite", "passlog.sqlite-wal"):
        if (old / name).exists():
            shutil.copy2(old / name, data / name)


def test_sync_refuses_a_log_that_verify_finds_rolled_back(tmp_path, monkeypatch, url):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    _rolled_back_station(data)

    verified = CliRunner().invoke(main, ["sessions", "verify"])
    assert verified.exit_code == 1, verified.output
    assert "older copy" in verified.output

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 1, synced.output  # was: "6 new records sent ...", exit 0
    assert "older copy" in synced.output and "nothing was sent" in synced.output
    assert "new records sent" not in synced.output


def test_sync_refuses_a_log_whose_anchors_file_was_emptied(tmp_path, monkeypatch, url):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    _station(data, "C-0042", "C-0043")
    (data / "passlog.anchors.jsonl").write_bytes(b"")  # verify: its receipts are gone

    assert CliRunner().invoke(main, ["sessions", "verify"]).exit_code == 1
    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 1, synced.output
    assert "not in the anchors file" in synced.output


def test_sync_refuses_a_damaged_file_as_verify_does(tmp_path, monkeypatch, url):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    _station(data, "C-0042", "C-0043")
    with sqlite3.connect(data / "passlog.sqlite") as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    damage_index(data / "passlog.sqlite")

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 3, synced.output
    assert "damaged: restore it from a backup" in synced.output
    assert len(synced.output.strip().splitlines()) == 1, synced.output
    assert "new records sent" not in synced.output
