"""The central store refuses TRUNCATE and UPDATE as it refuses DELETE (review 7b, R01), also a
store created before these guards (the migration at the next connection). Real PostgreSQL."""

from __future__ import annotations

import pytest

from smpdevice.records import central_schema
from smpdevice.records.central import compare, connect, sync
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_records_central import (
    KEY,
    add_session,
    central_rows,
    make_log,
)

psycopg = pytest.importorskip("psycopg")

REFUSED = [
    "TRUNCATE smp_signed_heads",
    "TRUNCATE smp_installations CASCADE",
    "TRUNCATE smp_logs CASCADE",
    "TRUNCATE smp_records",
    "DELETE FROM smp_signed_heads",
    "DELETE FROM smp_installations",
    "DELETE FROM smp_logs",
    "UPDATE smp_installations SET public_key = 'ab' || public_key",
    "UPDATE smp_logs SET head_seq = head_seq - 1",
    "UPDATE smp_logs SET head_hash = md5(head_hash) || md5(head_hash)",
    "UPDATE smp_logs SET head_seq = 3, head_hash = (SELECT hash FROM smp_records WHERE seq = 3)",
    "UPDATE smp_logs SET key_fingerprint = key_fingerprint",  # unchanged: accepted below
    "UPDATE smp_signed_heads SET signature = 'x'",
]


def _store(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite")
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    return db


def _snapshot(url):
    return [central_rows(url, f"SELECT * FROM {t} ORDER BY 1, 2") for t in
            ("smp_installations", "smp_logs", "smp_records", "smp_signed_heads")]


@pytest.mark.parametrize("statement", [s for s in REFUSED if "= key_fingerprint" not in s])
def test_the_central_store_refuses_what_rewrites_history(tmp_path, url, statement):
    _store(tmp_path, url)
    before = _snapshot(url)
    with psycopg.connect(url, autocommit=True) as conn, \
            pytest.raises(psycopg.Error, match="append-only"):
        conn.execute(statement)
    assert _snapshot(url) == before


def test_sync_still_moves_the_head_forward_and_signs_it(tmp_path, url):
    db = _store(tmp_path, url)
    with PassLog(db, key=KEY) as log:
        add_session(log)
    with PassLog(db, readonly=True) as log:
        assert sync(log, url, KEY).central_head == 18
        assert compare(log, url).problem is None
    with psycopg.connect(url, autocommit=True) as conn:  # a no-op update is no rewrite
        conn.execute("UPDATE smp_logs SET key_fingerprint = key_fingerprint")


def test_a_store_made_before_the_guards_gets_them_at_its_next_connection(tmp_path, url):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(central_schema.BASE)  # the schema as an older smpdevice created it
    db = make_log(tmp_path / "passlog.sqlite")
    with PassLog(db, readonly=True) as log, psycopg.connect(url, autocommit=True) as conn:
        # Fill it as that version did: the guards are not there yet.
        conn.execute("INSERT INTO smp_installations (key_fingerprint, public_key) "
                     "VALUES ('x', 'y')")
        conn.execute("UPDATE smp_installations SET public_key = 'z'")  # old store: accepted
        conn.execute("DELETE FROM smp_installations")
        assert not central_rows(url, "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s)",
                                (list(central_schema.GUARD_TRIGGERS),))
        sync(log, url, KEY)  # connects: the migration runs
    installed = {r[0] for r in central_rows(
        url, "SELECT tgname FROM pg_trigger WHERE tgname = ANY(%s)",
        (list(central_schema.GUARD_TRIGGERS),))}
    assert installed == set(central_schema.GUARD_TRIGGERS)
    heads = central_rows(url, "SELECT count(*) FROM smp_signed_heads")[0][0]
    with psycopg.connect(url, autocommit=True) as conn, \
            pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("TRUNCATE smp_signed_heads")
    assert central_rows(url, "SELECT count(*) FROM smp_signed_heads")[0][0] == heads > 0
    connect(url).close()  # idempotent: connecting again changes nothing, raises nothing
