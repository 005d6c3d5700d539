"""Review 16: `smp sessions verify --against` must not call a central store "identical to
the local records" when the store's rows were deleted or edited behind the triggers (the
tables' owner can `DISABLE TRIGGER USER`; docs/integration.md: verify --against checks "that
the local records are the central ones up to the central head (none rewritten or forked)").
Real SQLite, real PostgreSQL (the records tests' server)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_records_central import make_log

psycopg = pytest.importorskip("psycopg")


def _station(tmp_path, monkeypatch, url):
    data = station_dirs(tmp_path, monkeypatch)
    from smpdevice.records.keys import InstallationKey

    make_log(data / "passlog.sqlite", sessions=3, key=InstallationKey.load_or_create())
    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 0 and "records 1..18" in synced.output, synced.output


def _as_owner(url, *statements):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE smp_records DISABLE TRIGGER USER")
        for sql in statements:
            conn.execute(sql)
        conn.execute("ALTER TABLE smp_records ENABLE TRIGGER USER")


def test_central_records_deleted_at_the_end_are_named(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "DELETE FROM smp_records WHERE seq >= 16")  # smp_logs still says head 18

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])
    # was: "ok: the central store holds this log up to record 18, identical to the local
    # records", exit 0, with records 16..18 gone from the store
    assert checked.exit_code == 1, checked.output
    assert "identical" not in checked.output


def test_a_central_record_body_edited_is_named(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "UPDATE smp_records SET body = replace(body, '0.4', '9.9') WHERE seq = 3")
    with psycopg.connect(url) as conn:  # the store now says a pass ran ~9.9 mm deep
        body = conn.execute("SELECT body FROM smp_records WHERE seq = 3").fetchone()[0]
    assert "9.9" in body

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])
    # was: "identical to the local records", exit 0 (only the hash column is compared)
    assert checked.exit_code == 1, checked.output
    assert "record 3" in checked.output


def test_a_central_record_deleted_in_the_middle_is_named(tmp_path, monkeypatch, url):
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "DELETE FROM smp_records WHERE seq = 5")

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])
    assert checked.exit_code == 1, checked.output
    assert "record 5 of log" in checked.output and "is missing" in checked.output
    assert "identical" not in checked.output


def test_a_central_record_rewritten_whole_is_named(tmp_path, monkeypatch, url):
    """Its hash recomputed too (so it matches itself): the record after it no longer links."""
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "UPDATE smp_records SET body = replace(body, '0.4', '9.9') WHERE seq = 3",
              "UPDATE smp_records r SET hash = smp_record_hash(r) WHERE seq = 3")

    checked = CliRunner().invoke(main, ["sessions", "verify", "--against", url])
    assert checked.exit_code == 1, checked.output
    assert "record 3 of log" in checked.output and "record 4" in checked.output
    assert "altered" in checked.output


def test_a_sync_onto_records_deleted_behind_the_triggers_is_refused(
        tmp_path, monkeypatch, url):
    """The pen wrote on; the store's last records are gone but its head still names them:
    the sync says the store was altered (exit 1), not "run the sync again"."""
    _station(tmp_path, monkeypatch, url)
    _as_owner(url, "DELETE FROM smp_records WHERE seq >= 16")
    from smpdevice.records.keys import InstallationKey
    from smpdevice.records.sqlite import PassLog
    from tests.smpdevice.records.test_records_central import add_session

    db = tmp_path / "data" / "passlog.sqlite"
    with PassLog(db, key=InstallationKey.load_or_create()) as writer:
        add_session(writer)

    synced = CliRunner().invoke(main, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 1, synced.output
    assert "record 16 of log" in synced.output and "altered" in synced.output
    assert "run the sync again" not in synced.output
