"""rev18d (review 18h, b18h).
a record added by hand to the station's log (its signed head, at its last genuine
record, left as it was) while an older backup of it lies beside it. Readers then read the
backup in its place: the genuine sessions recorded after the backup, under the station's signed
head, vanish from `smp sessions list`, and the warning says the records after the backup's
head "are not under a head signed by a trusted key", though all but the hand-added one are.
Real SQLite."""

from __future__ import annotations

import json
import shutil
import sqlite3

from smpdevice.records.chain import record_hash
from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import canonical
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, alter, smp, station


def _append_by_hand(db) -> None:
    conn = sqlite3.connect(db)
    seq, last = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    body = json.loads(conn.execute("SELECT body FROM records WHERE seq = 1").fetchone()[0])
    conn.close()
    body["client_ref"] = "FORGED"
    text, at, sid = canonical(body), "2026-11-30T20:30:00+00:00", "Sfeedfacefeedface"
    digest = record_hash(seq + 1, "session_open", sid, None, at, text, last)
    alter(db, f"INSERT INTO records VALUES ({seq + 1}, 'session_open', '{sid}', NULL, "
              f"'{at}', '{text.replace(chr(39), chr(39) * 2)}', '{last}', '{digest}')")


def test_an_older_backup_never_hides_sessions_under_the_station_logs_signed_head(
        tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    shutil.copy(db, tmp_path / "backup.sqlite")
    shutil.copy(db.with_name("passlog.anchors.jsonl"), tmp_path / "backup.anchors.jsonl")
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        later = add_session(log)  # recorded and signed after the backup was taken
        signed_head = log.current_head()
    backup = db.with_name("passlog-SMPX.sqlite")
    shutil.copy(tmp_path / "backup.sqlite", backup)
    shutil.copy(tmp_path / "backup.anchors.jsonl", db.with_name("passlog-SMPX.anchors.jsonl"))
    _append_by_hand(db)
    assert signed_head is not None and signed_head.seq == 12 and signed_head.signature

    listed = smp("sessions", "list", "--json")
    ids = [s["session_id"] for s in json.loads(listed.stdout)]
    assert "records after 6 are not under a head signed" not in listed.stderr, listed.stderr
    assert later in ids, (ids, listed.stderr)  # was: only the backup's one session
    assert len(ids) == 3 and "Sfeedfacefeedface" in ids, ids  # the station's log, read once
    assert "records 13-13 are under no head signed" in listed.stderr, listed.stderr
    verified = smp("sessions", "verify")
    assert verified.exit_code == 1, verified.output  # the copy and the tail are named
