"""rev18d (review 18h, b18h).
an auditor's machine (its own installation key) reading a clinic's data directory
with a stale backup of the station's log beside it. Both heads are signed (by the clinic's
key, not trusted here), so both files are read (documented); but every reader's warning says
"neither head is signed", and that the newer log's records "are not under a head signed ...
(added by hand ...)": false, and it points the auditor at tampering. Real SQLite."""

from __future__ import annotations

import json
import shutil

from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, smp, station


def test_an_auditor_is_not_told_that_signed_heads_are_unsigned(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    shutil.copy(db, tmp_path / "backup.sqlite")
    shutil.copy(db.with_name("passlog.anchors.jsonl"), tmp_path / "backup.anchors.jsonl")
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        add_session(log)
    shutil.copy(tmp_path / "backup.sqlite", db.with_name("passlog-SMPX.sqlite"))
    shutil.copy(tmp_path / "backup.anchors.jsonl", db.with_name("passlog-SMPX.anchors.jsonl"))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "auditor-keys"))
    InstallationKey.load_or_create()  # the auditor's own key

    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 3, listed.output
    assert "neither head is signed" not in listed.stderr, listed.stderr
    assert "no key trusted here signed either head" in listed.stderr, listed.stderr
