"""review15 F5: a record body whose field has a type no reader can use (an edit, a bad sector
that kept the JSON valid) is named in one line, exit 3, by every reader: never a traceback.
Real SQLite, the real CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records import export as records_export
from tests.smpdevice.records.test_records_exports import session_by

EDITS = {  # name: (kind of record, field path, value of the wrong type)
    "open_envelope_text": ("session_open", ("envelope",), "x"),
    "open_envelope_sha_number": ("session_open", ("envelope",), {"sha256": 5, "zones": {}}),
    "open_technician_number": ("session_open", ("technician",), 5),
    "open_client_null": ("session_open", ("client_ref",), None),
    "open_opened_at_not_a_time": ("session_open", ("opened_at",), "yesterday"),
    "open_screening_list": ("session_open", ("screening",), []),
    "begin_zone_number": ("pass_begin", ("zone",), 5),
    "begin_started_null": ("pass_begin", ("started_at",), None),
    "begin_depth_text": ("pass_begin", ("depth_mm",), "0.4"),
    "begin_index_float": ("pass_begin", ("index",), 0.5),
    "end_outcome_number": ("pass_end", ("outcome",), 7),
    "end_ended_at_number": ("pass_end", ("ended_at",), 5),
    "end_fault_names_numbers": ("pass_end", ("fault_names",), [1, 2]),
    "end_samples_text": ("pass_end", ("stats", "samples"), "3"),
    "end_depth_min_null": ("pass_end", ("stats", "depth_min_mm"), None),
    "close_summary_text": ("session_close", ("summary",), "x"),
    "close_closed_at_number": ("session_close", ("closed_at",), 0),
}
SHOW = ["show", "show-json", "list"]
# The exports write these fields of each opening (not its time or screening, which they never
# read: a log edited there still exports).
EXPORTED = ("open_envelope_text", "open_envelope_sha_number", "open_technician_number",
            "open_client_null")


def _edited_log(tmp_path, edit):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = session_by(log, "ana", "C-0042", passes=1)
        log.close_session(sid, closed_at=datetime.now(UTC), summary={"passes": 1})
    kind, path, value = EDITS[edit]
    with sqlite3.connect(db) as conn:
        seq, body = conn.execute("SELECT seq, body FROM records WHERE kind = ? ORDER BY seq "
                                 "LIMIT 1", (kind,)).fetchone()
        edited = json.loads(body)
        inner = edited
        for key in path[:-1]:
            inner = inner[key]
        inner[path[-1]] = value
        conn.execute("UPDATE records SET body = ? WHERE seq = ?", (json.dumps(edited), seq))
    conn.close()
    return db, sid, seq


def _command(reader, sid, db):
    return {"show": ["sessions", "show", sid], "show-json": ["sessions", "show", sid, "--json"],
            "list": ["sessions", "list"],
            "export-csv": ["sessions", "export", "--format", "csv"],
            "export-jsonl": ["sessions", "export", "--format", "jsonl"]}[reader] + [
        "--db", str(db)]


CASES = [(edit, "show") for edit in EDITS] + [
    (edit, reader) for edit in EXPORTED for reader in ("export-csv", "export-jsonl")
] + [(edit, "list") for edit in ("open_opened_at_not_a_time", "close_closed_at_number",
                                 "close_summary_text")]


@pytest.mark.parametrize(("edit", "reader"), CASES)
def test_a_wrongly_typed_field_is_one_line_exit_3_not_a_traceback(tmp_path, edit, reader):
    db, sid, seq = _edited_log(tmp_path, edit)
    result = CliRunner().invoke(main, _command(reader, sid, db))
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, f"traceback: {result.exception!r}"
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"malformed record {seq}" in lines[0], result.output


@pytest.mark.parametrize("edit", EXPORTED)
def test_the_export_without_sqlites_json_refuses_them_too(tmp_path, monkeypatch, edit):
    """SQLite before 3.38: the export goes record by record (`export_records`)."""
    monkeypatch.setattr(records_export, "SQL_EXPORT", False)
    db, sid, _ = _edited_log(tmp_path, edit)
    for reader in ("export-csv", "export-jsonl"):
        result = CliRunner().invoke(main, _command(reader, sid, db))
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            f"traceback: {result.exception!r}"
        assert result.exit_code == 3, result.output
        assert "malformed record" in result.output and "damaged" in result.output


def test_the_records_as_written_read_as_before(tmp_path):
    """Nothing honest is refused: every reader reads the log as the writer wrote it."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = session_by(log, "ana", "C-0042", passes=2)
        session_by(log, "bo", "C-0043", passes=1)  # left open, as a running session is
        log.close_session(sid, closed_at=datetime.now(UTC), summary={"passes": 2})
    for reader in ("show", "show-json", "list", "export-csv", "export-jsonl"):
        result = CliRunner().invoke(main, _command(reader, sid, db))
        assert result.exit_code == 0, (reader, result.output)
