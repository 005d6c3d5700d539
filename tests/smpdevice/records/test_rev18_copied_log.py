"""Review 18 (finding 5): a copy of the station's log placed as a pen's log (`cp passlog.sqlite
passlog-SMPX.sqlite`, and its anchors file) carries the same log id: the data directory
holds one log twice. Verify said `ok` for both (exit 0) and every reader that reads the logs
of the data directory as one counted each session and pass twice. Verify now names it
(`copied`, exit 1); readers read it once, with a warning naming it."""

from __future__ import annotations

import csv
import io
import json
import shutil

from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import smp, station


def copied_station(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch)
    shutil.copy(db, db.with_name("passlog-SMPX.sqlite"))
    shutil.copy(db.with_name("passlog.anchors.jsonl"),
                db.with_name("passlog-SMPX.anchors.jsonl"))
    return db


def test_verify_names_a_log_that_is_a_copy_of_another(tmp_path, monkeypatch):
    db = copied_station(tmp_path, monkeypatch)
    out = smp("sessions", "verify")
    assert out.exit_code == 1, out.output  # was: ok for both, exit 0
    assert (f"copied: the pass log {db.with_name('passlog-SMPX.sqlite')} holds the same log "
            f"as {db}") in out.output
    alone = smp("sessions", "verify", "--db", str(db))  # each file alone still holds
    assert alone.exit_code == 0, alone.output


def test_readers_of_the_data_directory_read_the_log_once(tmp_path, monkeypatch):
    db = copied_station(tmp_path, monkeypatch)
    with PassLog(db, readonly=True) as log:
        sessions = [s.session_id for s in log.sessions()]
    out = smp("sessions", "export", "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    ids = [row["pass_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 4  # 2 sessions of 2 passes (was: 8 rows)
    assert "holds the same log as" in out.stderr  # named, not silently dropped
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted(s["session_id"] for s in json.loads(listed.stdout)) == sorted(sessions)
