"""Review 18b (finding 4): the schema comparison skipped every object named `sqlite_%` (meant
for autoindexes and statistics): a trigger `sqlite_keep ... RAISE(IGNORE)` made with PRAGMA
writable_schema passed verify and a writer's open, and dropped every pass_begin. Only SQLite's
own objects are left out now (autoindexes without SQL, sqlite_stat1..4, sqlite_sequence)."""

from __future__ import annotations

import sqlite3

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import alter, smp, station

HIDDEN = {
    "trigger": ("CREATE TRIGGER sqlite_keep BEFORE INSERT ON records WHEN NEW.kind = "
                "'pass_begin' BEGIN SELECT RAISE(IGNORE); END",
                "trigger sqlite_keep (on records) was added"),
    "view": ("CREATE VIEW sqlite_stat9 AS SELECT seq FROM records",
             "view sqlite_stat9 was added"),
    "autoindex-named": ("CREATE INDEX sqlite_autoindex_records_9 ON records(body)",
                        "index sqlite_autoindex_records_9 (on records) was added"),
}


def _hide(db, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize("what", sorted(HIDDEN))
def test_an_object_named_sqlite_is_named_by_verify_and_refused_by_a_writer(
        tmp_path, monkeypatch, what):
    sql, named = HIDDEN[what]
    db = station(tmp_path, monkeypatch)
    _hide(db, sql)
    verify = smp("sessions", "verify")
    assert verify.exit_code == 1, verify.output  # was: "ok: 12 records, chain intact ...", 0
    assert named in verify.output, verify.output
    with pytest.raises(LogAltered, match=named.split(" (")[0].removesuffix(" was added")):
        PassLog(db).close()  # was: opened; its first pass_begin then refused mid-session


def test_sqlites_own_statistics_are_still_left_out(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    alter(db, "ANALYZE")  # sqlite_stat1 (and sqlite_stat4 where built in): SQLite's own
    verify = smp("sessions", "verify")
    assert verify.exit_code == 0, verify.output
    PassLog(db).close()
