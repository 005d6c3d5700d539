"""Review 8b (records): a log being created is never synced under a made-up id (R06); the only
log deleted is reported by `verify --against` (R02); `--anchors` beside several logs is refused,
never dropped (R04); the documented PCs' role (INSERT/SELECT, UPDATE on smp_logs) syncs and
verifies (R01). Real SQLite, real PostgreSQL."""

from __future__ import annotations

import shutil
import uuid

import pytest
from click.testing import CliRunner

from smpdevice.cli import main as cli
from smpdevice.passlog import PassLog
from smpdevice.records.central import CentralStoreError, compare, sync
from tests.smpdevice.records.test_records_central import (
    KEY,
    central_rows,
    make_log,
)
from tests.smpdevice.records.test_records_verify_missing import _log, data, verify  # noqa: F401

psycopg = pytest.importorskip("psycopg")


# --- R06: a log being created has no id, and is never synced -----------------------------

def test_a_log_being_created_reads_with_no_id(tmp_path):
    empty = tmp_path / "passlog-SMP-0002.sqlite"
    empty.write_bytes(b"")  # its writer has not committed the schema yet
    ids = set()
    for _ in range(2):
        with PassLog(empty, readonly=True) as log:
            ids.add(log.log_id)
            assert log.head()[0] == 0
    assert ids == {""}  # the old code made up a new random id at every open


def test_a_log_with_no_id_is_never_registered(tmp_path, url):
    empty = tmp_path / "passlog.sqlite"
    empty.write_bytes(b"")
    with PassLog(empty, readonly=True) as log, \
            pytest.raises(CentralStoreError, match="no log id yet"):
        sync(log, url, KEY)


def test_sync_skips_a_log_being_created_and_verify_stays_clean(data, url):  # noqa: F811
    _log(data / "passlog.sqlite", 1)
    (data / "passlog-SMP-0002.sqlite").write_bytes(b"")
    synced = CliRunner().invoke(cli, ["sessions", "sync", "--to", url])
    assert synced.exit_code == 0, synced.output
    assert "skipped" in synced.output and "passlog-SMP-0002.sqlite" in synced.output
    assert len(central_rows(url, "SELECT log_id FROM smp_logs")) == 1
    checked = verify("--against", url)  # the empty log is checked, not compared
    assert checked.exit_code == 0, checked.output
    assert "no log id yet" in checked.output
    _log(data / "passlog-SMP-0002.sqlite", 1)  # created now; its first session is logged
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    result = verify("--against", url)
    assert result.exit_code == 0, result.output
    assert len(central_rows(url, "SELECT log_id FROM smp_logs")) == 2


# --- R02: the only log deleted -----------------------------------------------------------

def test_the_only_log_deleted_is_named_by_verify_against(data, url):  # noqa: F811
    station_id = _log(data / "passlog.sqlite", 2)
    assert CliRunner().invoke(cli, ["sessions", "sync", "--to", url]).exit_code == 0
    for gone in data.glob("passlog.*"):
        gone.unlink()
    result = verify("--against", url)
    assert result.exit_code == 1, result.output
    assert f"log {station_id} (up to record " in result.output
    assert "removed or moved" in result.output


def test_no_log_here_nor_in_the_central_store_is_a_fresh_station(data, url):  # noqa: F811
    from smpdevice.records.keys import InstallationKey

    InstallationKey.load_or_create()  # a station set up, no session yet
    result = verify("--against", url)
    assert result.exit_code == 0, result.output  # as without --against (review 12, REV3B-7)
    assert "nothing to verify" in result.output


# --- R04: --anchors with several logs ----------------------------------------------------

def test_anchors_beside_two_logs_is_refused_naming_what_to_do(data, tmp_path):  # noqa: F811
    _log(data / "passlog.sqlite", 1)
    kept = tmp_path / "kept.anchors.jsonl"
    shutil.copy(data / "passlog.anchors.jsonl", kept)
    _log(data / "passlog-SMP-0001.sqlite", 1)
    result = verify("--anchors", str(kept))
    assert result.exit_code == 2, result.output  # the old code: "ok" twice, exit 0
    assert "--anchors" in result.output and "--db" in result.output
    assert "passlog-SMP-0001.sqlite" in result.output
    alone = verify("--db", str(data / "passlog.sqlite"), "--anchors", str(kept))
    assert alone.exit_code == 0, alone.output  # the way the message gives


def test_anchors_given_with_db_still_catch_a_rollback_beside_a_pen_log(data, tmp_path):  # noqa: F811
    station, anchors = data / "passlog.sqlite", data / "passlog.anchors.jsonl"
    _log(station, 1)
    old = tmp_path / "old"
    old.mkdir()
    for f in (station, anchors):
        shutil.copy(f, old / f.name)
    _log(station, 1)
    kept = tmp_path / "kept.anchors.jsonl"
    shutil.copy(anchors, kept)
    for side in data.glob("passlog.sqlite-*"):
        side.unlink()
    for f in (station, anchors):
        shutil.copy(old / f.name, f)
    _log(data / "passlog-SMP-0001.sqlite", 1)
    result = verify("--db", str(station), "--anchors", str(kept))
    assert result.exit_code == 1, result.output


# --- R01: the PCs' role of docs/integration.md -------------------------------------------

def _pc_role_url(owner_url: str) -> str:
    """A role with exactly what docs/integration.md gives the PCs."""
    role = "pc_" + uuid.uuid4().hex[:8]
    database = owner_url.rsplit("/", 1)[1]
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
        conn.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        conn.execute(f'GRANT INSERT, SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        conn.execute(f'GRANT UPDATE ON smp_logs TO "{role}"')
    scheme, rest = owner_url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[-1]}"


def test_the_documented_pc_role_syncs_and_verifies(tmp_path, url):
    (tmp_path / "a").mkdir()
    with PassLog(make_log(tmp_path / "a" / "passlog.sqlite"), readonly=True) as log:
        sync(log, url, KEY)  # the owner sets the store up
    pc_url = _pc_role_url(url)
    with PassLog(make_log(tmp_path / "passlog-PEN2.sqlite"), readonly=True) as log:
        assert sync(log, pc_url, KEY).sent > 0
        assert compare(log, pc_url).problem is None
        with psycopg.connect(pc_url, autocommit=True) as conn, \
                pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TRIGGER smp_records_frozen ON smp_records")  # still guarded


def test_a_pc_role_on_a_store_missing_a_guard_is_told_to_run_as_the_owner(tmp_path, url):
    with PassLog(make_log(tmp_path / "passlog.sqlite"), readonly=True) as log:
        sync(log, url, KEY)
        pc_url = _pc_role_url(url)
        with psycopg.connect(url, autocommit=True) as conn:  # an owner dropped one
            conn.execute("DROP TRIGGER smp_logs_forward_only ON smp_logs")
        with pytest.raises(CentralStoreError, match="tables' owner"):
            compare(log, pc_url)  # never used without its guards
        assert compare(log, url).problem is None  # the owner's connection puts it back
        assert central_rows(url, "SELECT 1 FROM pg_trigger WHERE tgname = "
                                 "'smp_logs_forward_only'")
        assert compare(log, pc_url).problem is None
