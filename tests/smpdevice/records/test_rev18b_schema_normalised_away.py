"""Review 18b (finding 5): the schema comparison lowercased each object's SQL and removed every
space and quote, literals and quoted names included: a CHECK literal given a trailing space, a
partial index's literal upper-cased, a column renamed by quoting it with its type all compared
equal. Literals are now compared exactly, names unquoted only as SQLite reads them, and each
table's and index's columns as SQLite made them (table_xinfo, index_xinfo); a log migrated from
each older schema (SQLite rewrites a renamed table's SQL) still compares equal."""

from __future__ import annotations

import sqlite3

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_layout import schema_problem
from smpdevice.records.sqlite_recovery import LogAltered
from smpdevice.records.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from tests.smpdevice.records._rev18_station import smp, station


def _rewrite(db, name: str, old: str, new: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA writable_schema = ON")
    changed = conn.execute("UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE name = ?",
                           (old, new, name)).rowcount
    conn.commit()
    conn.close()
    assert changed == 1


@pytest.mark.parametrize(("name", "old", "new"), [
    ("records", "'pass_begin'", "'pass_begin '"),
    ("records_session_close", "kind='session_close'", "kind='SESSION_CLOSE'"),
    ("records", "body TEXT NOT NULL", '"body TEXT" NOT NULL'),
    ("records_session", "session_id, seq", "session_id COLLATE NOCASE, seq"),
    ("signed_heads", "reason TEXT NOT NULL", "reason TEXT NOT NULL DEFAULT 'interval'"),
], ids=["check-literal-space", "index-literal-case", "column-quoted", "index-collation",
        "default-added"])
def test_an_object_redefined_inside_a_literal_or_quoted_name_is_named(
        tmp_path, monkeypatch, name, old, new):
    db = station(tmp_path, monkeypatch)
    _rewrite(db, name, old, new)
    verify = smp("sessions", "verify")
    assert verify.exit_code == 1, verify.output  # was: 0 "ok: ..." (or 3 "check the disk")
    assert "the log's schema is not the one smpdevice writes" in verify.output, verify.output
    with pytest.raises(LogAltered, match="the log's schema is not the one"):
        PassLog(db).close()


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
@pytest.mark.parametrize("legacy_alter", [False, True])
def test_a_log_migrated_from_each_older_schema_compares_equal(tmp_path, monkeypatch, version,
                                                              legacy_alter):
    station(tmp_path, monkeypatch, sessions=0)  # this test's own key and data directories
    db = tmp_path / f"v{version}.sqlite"
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA legacy_alter_table = {int(legacy_alter)}")  # older SQLite renames
    for number, description, statements in MIGRATIONS[:version]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, '2025-01-01T00:00:00+00:00', ?)",
                     (number, description))
    conn.commit()
    conn.close()
    PassLog(db).close()  # migrated to the current schema by a writer
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] \
            == SCHEMA_VERSION
        assert schema_problem(conn, SCHEMA_VERSION) is None
    finally:
        conn.close()
