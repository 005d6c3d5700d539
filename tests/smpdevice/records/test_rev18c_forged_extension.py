"""Review 18f (F2): of two files holding one log, the one whose chain extends the other's was
taken for the log written on by stored hashes alone: a copy with one record appended by hand
(plain hash recomputed, no key) was read in place of the station's signed log, and a writer
told the operator to move the genuine, verifying station log out. An extension is now read in
the other's place only when its chain head is signed by a trusted key. Real SQLite."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from smpdevice.records.chain import record_hash
from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import PassLogError, canonical
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import alter, smp, station


def forged_extension(db, copy) -> None:
    shutil.copy(db, copy)
    conn = sqlite3.connect(copy)
    seq, last = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    body = json.loads(conn.execute("SELECT body FROM records WHERE seq = 1").fetchone()[0])
    conn.close()
    body["client_ref"] = "FORGED"
    text, at, sid = canonical(body), "2026-11-30T20:30:00+00:00", "Sfeedfacefeedface"
    digest = record_hash(seq + 1, "session_open", sid, None, at, text, last)
    alter(copy, f"INSERT INTO records VALUES ({seq + 1}, 'session_open', '{sid}', NULL, "
                f"'{at}', '{text.replace(chr(39), chr(39) * 2)}', '{last}', '{digest}')")


def test_a_hand_extended_copy_never_displaces_the_signed_station_log(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    copy = db.with_name("passlog-SMPX.sqlite")
    forged_extension(db, copy)
    assert smp("sessions", "verify", "--db", str(copy)).exit_code == 1  # the copy is forged
    assert smp("sessions", "verify", "--db", str(db)).exit_code == 0  # the station's holds
    with pytest.raises(PassLogError) as refused, \
            PassLog(db, key=InstallationKey.load_or_create()):
        pass
    said = str(refused.value)
    assert f"move {db} out" not in said and f"move {copy} out" in said, said  # was: db's
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [s["client_ref"] for s in json.loads(listed.stdout)] == ["C-0042"]  # was: FORGED
    assert f"{copy} holds the log of {db} and more" in listed.stderr, listed.stderr
    assert "copied:" in smp("sessions", "verify").output
