"""Review 19: a writer that refuses a log says "Nothing was written": it must be true of the
schema too. A signed log rewritten as an older, schema-2 one was brought up to the current
schema (its tables added, a `schema_version` row committed) and only then refused by the head
check. The migration and the check are now one transaction: a refusal leaves the file's schema
and content as they were (its header may say WAL: the mode every open sets)."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def _schema(db) -> tuple[list[tuple[str, str]], list[int], str]:
    conn = sqlite3.connect(db)
    try:
        objects = conn.execute("SELECT type, name FROM sqlite_master ORDER BY name").fetchall()
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version")]
        content = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()
    return objects, versions, content


def test_a_refused_older_log_is_left_as_it_was(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    older = tmp_path / "older.sqlite"
    schema_2_log(db, older)
    older.replace(db)  # its anchors file beside it: it was signed, the writer refuses it
    before = _schema(db)
    with pytest.raises(LogAltered, match="Nothing was written"):
        PassLog(db).close()
    assert _schema(db) == before  # was: the current schema's tables and versions added
    assert max(before[1]) == 2
