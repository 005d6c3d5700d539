"""Review 18 b18d: a file beside the pass log is a pass log by the log's own marks (its
`records` table with the log's columns, `meta.log_id`), not by a table named
`schema_version` alone (a common migrations table): another program's database with one is
skipped, and the cut pass is counted by the pen (before: "cannot tell" on every resume, its
recorded dots only). A file with the log's marks that cannot be read stays "cannot tell"."""
from __future__ import annotations

import sqlite3

import pytest

from smpdevice.passlog import PassLog
from tests.smpdevice.sessions.test_rev18b_same_log_uncountered import (
    BEGIN,
    CUT_MADE,
    CUT_RECORDED,
    T0,
    a_pass,
    count,
    session,
)

LOG_RECORDS = ("CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT, session_id TEXT, "
               "pass_id TEXT, written_at TEXT, body TEXT, prev_hash TEXT, hash TEXT)")
FOREIGN = {  # another program's database, each with a `schema_version` table
    "migrations": ["CREATE TABLE schema_version (installed_rank INTEGER, script TEXT)",
                   "CREATE TABLE items (sku TEXT)"],
    "own_records_and_meta": ["CREATE TABLE schema_version (version INTEGER)",
                             "CREATE TABLE records (id INTEGER, payload TEXT)",
                             "CREATE TABLE meta (key TEXT, value TEXT)"],
    "meta_without_log_id": ["CREATE TABLE schema_version (version INTEGER)",
                            "CREATE TABLE meta (name TEXT, value TEXT)",
                            "INSERT INTO meta VALUES ('owner', 'inventory')"],
}
MARKED_UNREADABLE = {  # the log's marks, yet no log the pass log can read
    "records": ["CREATE TABLE schema_version (installed_rank INTEGER)", LOG_RECORDS],
    "meta_log_id": ["CREATE TABLE schema_version (installed_rank INTEGER)",
                    "CREATE TABLE meta (name TEXT, value TEXT)",
                    "INSERT INTO meta VALUES ('log_id', 'abc')"],
}


def _cut(tmp_path, monkeypatch, statements: list[str]):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = session(log)
        a_pass(log, sid, T0, BEGIN, CUT_RECORDED, "link_lost")
    other = sqlite3.connect(tmp_path / "inventory.sqlite")
    for statement in statements:
        other.execute(statement)
    other.commit()
    other.close()
    cut, got = count(tmp_path, sid, CUT_MADE)
    beside = sorted(p.name for p in tmp_path.glob("inventory*"))
    assert beside == ["inventory.sqlite"], beside  # nothing made beside another's file
    return cut, got


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_another_programs_database_with_schema_version_is_skipped(tmp_path, monkeypatch,
                                                                  kind):
    cut, got = _cut(tmp_path, monkeypatch, FOREIGN[kind])
    assert got.counted == {cut: CUT_MADE} and not got.notes, got  # the pen's count


@pytest.mark.parametrize("kind", sorted(MARKED_UNREADABLE))
def test_a_file_with_the_logs_marks_that_cannot_be_read_is_cannot_tell(tmp_path, monkeypatch,
                                                                       kind):
    cut, got = _cut(tmp_path, monkeypatch, MARKED_UNREADABLE[kind])
    assert cut not in got.counted, got
    assert len(got.notes) == 1 and "inventory.sqlite" in got.notes[0], got
    assert "cannot be read" in got.notes[0], got
