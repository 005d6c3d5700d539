"""Review 19 (fix-of-fix) of the writer's signed-heads check (`sqlite_heads`): the signed
`heads_checked` note a sound open leaves must cover everything a head's check reads, and a
damaged note must cost only time.

- The note's digest covered the `signed_heads` rows only: a record a noted head names, edited
  or deleted after a sound open, or a key removed from `signing_keys` that older heads were
  signed with, was no longer found by the next writer (without the note the same log is
  refused). The digest now covers each head's record hash and the log's keys.
- A note whose seq or count is not a JSON integer (1e999 read as Infinity crashed the open
  with OverflowError) is no note: every head is checked again, the note renewed."""

from __future__ import annotations

import json
import sqlite3

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_heads import NOTE
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import add_session, alter, smp, station


def _one(db, sql: str):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchone()
    finally:
        conn.close()


EDITS = {  # what is done to the record the oldest signed head (a session_close) names
    "hash": "UPDATE records SET hash = '" + "0" * 64 + "' WHERE seq = {seq}",
    "deleted": "DELETE FROM records WHERE seq = {seq}",
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("noted", [False, True])
def test_a_record_edited_under_a_noted_head_is_refused(tmp_path, monkeypatch, noted, edit):
    db = station(tmp_path, monkeypatch, sessions=3)
    PassLog(db).close()  # a sound open: the note now covers every head
    if not noted:
        alter(db, f"DELETE FROM meta WHERE name = '{NOTE}'")
    seq = _one(db, "SELECT min(seq) FROM signed_heads")[0]
    count = _one(db, "SELECT count(*) FROM records")[0]
    alter(db, EDITS[edit].format(seq=seq))
    with pytest.raises(LogAltered, match=f"signed head at record {seq} .* names a record"):
        PassLog(db).close()  # was, noted: opened, and the next session appended to it
    assert _one(db, "SELECT count(*) FROM records")[0] == count - (edit == "deleted")


def test_a_key_removed_under_a_noted_head_is_refused(tmp_path, monkeypatch):
    """Heads signed by an older key of the log, its row deleted from `signing_keys` after a
    sound open by the newer key: the note (signed by the newer key) covered no keys."""
    db = station(tmp_path, monkeypatch, sessions=2)  # signed by the station's key
    older = _one(db, "SELECT key_fingerprint FROM signed_heads ORDER BY seq LIMIT 1")[0]
    newer = InstallationKey.generate()
    with PassLog(db, key=newer) as log:  # a new key: its heads after the older ones
        add_session(log)
    PassLog(db, key=newer).close()  # sound: the note covers every head
    alter(db, f"DELETE FROM signing_keys WHERE fingerprint = '{older}'")
    with pytest.raises(LogAltered, match=f"is signed by key {older}, which is not recorded"):
        PassLog(db, key=newer).close()


NOTES = ['{"seq": 1e999}', '{"seq": 1e999, "count": 1, "digest": "", "key": "", '
         '"signature": ""}', '{"seq": NaN, "count": 1}', '{"seq": true, "count": true}',
         '{"seq": 2.0, "count": 1}', '{"seq": "12", "count": "2"}',
         '{"seq": 12, "count": -Infinity}', '{"seq": ' + "9" * 30 + ', "count": 1}',
         '{"seq": -1, "count": 1}', '[1e999]', '1e999']


@pytest.mark.parametrize("value", NOTES)
def test_a_damaged_note_costs_only_time(tmp_path, monkeypatch, value):
    db = station(tmp_path, monkeypatch, sessions=2)
    PassLog(db).close()  # the note written
    alter(db, f"UPDATE meta SET value = '{value}' WHERE name = '{NOTE}'")
    with PassLog(db) as log:  # was: OverflowError from int(inf) in sqlite_heads._noted
        add_session(log)
    out = smp("sessions", "verify", "--db", str(db))
    assert out.exit_code == 0, out.output
    PassLog(db).close()  # the note renewed, sound again
    note = json.loads(_one(db, f"SELECT value FROM meta WHERE name = '{NOTE}'")[0])
    assert note["seq"] == _one(db, "SELECT max(seq) FROM signed_heads")[0]
    assert type(note["count"]) is int and note["count"] > 0
