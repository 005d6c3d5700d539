"""Known defect of session 18: a writer (a PassLog opened for appending) appended to a log one
of whose `signed_heads` signatures was altered; `smp sessions verify` named it only afterwards.
A writer now refuses such a log before anything is written (LogAltered, exit 3), naming the
file, the head and what verify says of it; each signed head is checked (`sqlite_heads`), the
ones a previous open found sound through its signed note, whatever is done to that note."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from smpdevice.records.sqlite import PassLog
from smpdevice.records.sqlite_heads import NOTE
from smpdevice.records.sqlite_recovery import LogAltered
from tests.smpdevice.records._rev18_station import add_session, alter, smp, station


def _heads(db) -> list[tuple[int, str, str]]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT seq, reason, signature FROM signed_heads ORDER BY seq").fetchall()
    conn.close()
    return rows


def _flip(signature: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[10] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def _count(db) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("which", ["oldest", "newest"])
def test_a_writer_refuses_a_log_with_an_altered_signed_head(tmp_path, monkeypatch, which):
    db = station(tmp_path, monkeypatch, sessions=3)
    heads = _heads(db)
    seq, reason, signature = heads[0] if which == "oldest" else heads[-1]
    alter(db, f"UPDATE signed_heads SET signature = '{_flip(signature)}' WHERE seq = {seq}")
    said = f"the signed head at record {seq} ({reason}) has a signature that does not verify"
    out = smp("sessions", "verify", "--db", str(db))
    assert out.exit_code == 1 and said in out.output, out.output
    before = _count(db)
    with pytest.raises(LogAltered) as refused:
        PassLog(db).close()  # was: opened, and the next session appended to it
    assert str(db) in str(refused.value) and said in str(refused.value)
    assert "Nothing was written" in str(refused.value)
    assert _count(db) == before


def test_a_head_altered_after_a_sound_open_is_still_found(tmp_path, monkeypatch):
    """The note a sound open leaves lets the next open skip no head that changed since."""
    db = station(tmp_path, monkeypatch, sessions=3)
    PassLog(db).close()  # sound: the note is written
    seq, reason, signature = _heads(db)[1]
    alter(db, f"UPDATE signed_heads SET signature = '{_flip(signature)}' WHERE seq = {seq}")
    with pytest.raises(LogAltered, match=f"signed head at record {seq} \\({reason}\\)"):
        PassLog(db).close()
    # Nor can the note be made to say the heads were checked: it is signed too.
    conn = sqlite3.connect(db)
    note = json.loads(conn.execute("SELECT value FROM meta WHERE name = ?", (NOTE,)).fetchone()[0])
    conn.close()
    last = _heads(db)[-1][0]
    forged = {**note, "seq": last + 1000}
    alter(db, f"UPDATE meta SET value = '{json.dumps(forged)}' WHERE name = '{NOTE}'")
    with pytest.raises(LogAltered, match=f"signed head at record {seq} "):
        PassLog(db).close()
    alter(db, f"DELETE FROM meta WHERE name = '{NOTE}'")
    with pytest.raises(LogAltered, match=f"signed head at record {seq} "):
        PassLog(db).close()


def test_a_signed_head_naming_another_record_is_refused(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    seq, reason, _ = _heads(db)[0]
    alter(db, f"UPDATE signed_heads SET hash = '{'0' * 64}' WHERE seq = {seq}")
    with pytest.raises(LogAltered, match=f"signed head at record {seq} \\({reason}\\) names a "
                                         "record the log no longer holds"):
        PassLog(db).close()


def test_a_sound_log_opens_and_appends_as_before(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    for _ in range(3):  # the note renewed at each open; each head checked once
        with PassLog(db) as log:
            add_session(log)
    out = smp("sessions", "verify", "--db", str(db))
    assert out.exit_code == 0, out.output
