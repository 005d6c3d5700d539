"""review15 F8: the CSV export guards every text cell on its parsed value, whatever JSON
spelling the body uses (`=` written `\\u003d` in an edited log, or by any other JSON writer):
no cell a spreadsheet runs as a formula gets out. Real SQLite, the real CLI."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_records_exports import session_by

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ESCAPES = {"=": "\\u003d", "+": "\\u002b", "-": "\\u002d", "@": "\\u0040", "\t": "\\u0009",
           "\r": "\\u000d"}


def _escaped(value: str) -> str:
    """`value` as JSON text with its first character written as a \\u escape."""
    return '"' + ESCAPES[value[0]] + json.dumps(value[1:])[1:]


# (kind of record, field, the value a spreadsheet would run, the CSV column)
EDITS = [("pass_begin", "zone", '=HYPERLINK("http://x")', "zone"),
         ("pass_begin", "zone", "+1+1", "zone"),
         ("pass_begin", "started_at", "@SUM(A1)", "started_at"),
         ("pass_end", "outcome", "-2+3", "outcome"),
         ("pass_end", "ended_at", "\t=1", "ended_at"),
         ("session_open", "pen_serial", "=1+1", "pen_serial"),
         ("session_open", "technician", "\r=1", "technician")]


@pytest.mark.parametrize(("kind", "field", "value", "column"), EDITS)
def test_a_cell_spelt_as_a_json_escape_is_still_guarded_in_the_csv(tmp_path, kind, field,
                                                                   value, column):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        session_by(log, "ana", "C-0042", passes=1)
    with sqlite3.connect(db) as conn:
        seq, body = conn.execute("SELECT seq, body FROM records WHERE kind = ?",
                                 (kind,)).fetchone()
        old = json.dumps(json.loads(body)[field], ensure_ascii=False)
        edited = body.replace(f'"{field}":{old}', f'"{field}":{_escaped(value)}')
        assert edited != body and json.loads(edited)[field] == value
        conn.execute("UPDATE records SET body = ? WHERE seq = ?", (edited, seq))
    conn.close()

    for identified in ([], ["--identified"]):
        result = CliRunner().invoke(main, ["sessions", "export", "--format", "csv", "--db",
                                           str(db), *identified])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.output, newline="")))
        assert len(rows) == 1
        live = {name: cell for name, cell in rows[0].items() if cell.startswith(FORMULA_STARTS)}
        assert not live, f"cells that a spreadsheet runs as formulas: {live}"
        if identified or column != "technician":  # else a pseudonym stands there
            assert rows[0][column] == "'" + value
