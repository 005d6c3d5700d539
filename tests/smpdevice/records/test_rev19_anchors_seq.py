"""Review 19 (fix-of-fix): an anchors file whose last line holds a seq that is not a JSON
integer SQLite can hold (1e999 read as Infinity, NaN, 2.5, true, 10**30, -1) is damage, said
in words (safety.md: "clear errors instead of tracebacks"), never an OverflowError: a writer's
open (`sqlite_recovery.read_tail`) leaves it for verify and records on; verify of an unsigned
log (`has_receipts`, read with --no-anchors too) names the log's signed evidence."""

from __future__ import annotations

import json
import sqlite3

import pytest

from smpdevice.records.logset import anchors_path
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, smp, station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log

SEQS = ["1e999", "-1e999", "NaN", "2.5", "true", "9" * 30, "-1", '"3"', "null"]


@pytest.mark.parametrize("seq", SEQS)
def test_an_anchors_line_with_such_a_seq_leaves_a_writer_recording(tmp_path, monkeypatch, seq):
    db = station(tmp_path, monkeypatch, sessions=1)
    damaged = f'{{"seq": {seq}, "head_hash": "x"}}\n'
    with anchors_path(db).open("a") as anchors:
        anchors.write(damaged)
    with PassLog(db) as log:  # was, for 1e999: OverflowError from read_tail
        add_session(log)
    conn = sqlite3.connect(db)
    closes = conn.execute("SELECT count(*) FROM records WHERE kind = 'session_close'").fetchone()
    conn.close()
    assert closes == (2,)
    assert damaged in anchors_path(db).read_text()  # left as it is, for verify to name
    out = smp("sessions", "verify", "--db", str(db))
    said = "line 2 of the anchors file"  # damaged: exit 2, as any damage to it
    assert out.exit_code == 2 and said in out.output and "is damaged" in out.output, out.output


@pytest.mark.parametrize("seq", ["1e999", "true", "9" * 30])
def test_verify_of_an_unsigned_log_with_such_an_anchors_line_says_it_in_words(
        tmp_path, monkeypatch, seq):
    """verify's `once_signed` reads the anchors file beside the log (`has_receipts`) with
    --no-anchors too: a line of 1e999 crashed it (exit 1, a traceback, no line saying why)."""
    db = station(tmp_path, monkeypatch)
    older = tmp_path / "older.sqlite"
    schema_2_log(db, older)
    older.replace(db)
    anchors_path(db).write_text(f'{{"seq": {seq}, "head_hash": "x"}}\n')
    out = smp("sessions", "verify", "--db", str(db), "--allow-unsigned", "--no-anchors")
    assert not isinstance(out.exception, OverflowError), repr(out.exception)
    assert out.exit_code == 1 and "broken link" in out.output, out.output


@pytest.mark.parametrize("seq", ["1e999", "true", "9" * 30, "0"])
def test_a_whole_receipt_line_with_such_a_seq_is_damage_said_in_words(tmp_path, monkeypatch, seq):
    """verify reads every receipt of the anchors file (`signing.read_anchors`): a full receipt
    whose seq was 1e999 crashed it (OverflowError, exit 1) and `true` was taken as record 1."""
    db = station(tmp_path, monkeypatch, sessions=1)
    lines = anchors_path(db).read_text().splitlines()
    receipt = json.loads(lines[-1])
    edited = json.dumps(receipt).replace(f'"seq": {receipt["seq"]}', f'"seq": {seq}')
    assert edited != json.dumps(receipt)
    anchors_path(db).write_text("\n".join([*lines[:-1], edited]) + "\n")
    out = smp("sessions", "verify", "--db", str(db))
    assert out.exit_code == 2, (out.exit_code, repr(out.exception), out.output)
    assert f"line {len(lines)} of the anchors file" in out.output and "is damaged" in out.output
