"""The CSV export of an SQLite pass log: exactly the text `export.export_records` writes, fast.

Each session's cells are made once; a pass's cells come from its two bodies, each parsed ONCE
by SQLite (one `json_extract` with many paths returns them as one JSON array; an `->>` per cell
parsed the body per cell). Every text cell is guarded (`export.csv_safe`) as the record-by-
record export does; the guard is skipped only on rows whose JSON shows no string that starts
like a formula. (Rendering ranges in forked processes, as verify walks, measured slower on the
2 loaded cores: one process.)
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any, TextIO

from smpdevice.records.export import (
    IDENTIFYING_FIELDS,
    ExportFilter,
    Pseudonyms,
    _csv_cell,
    _writer,
)
from smpdevice.records.model import SESSION_FIELDS

_BEGIN_PATHS = ("zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at",
                "simulated")
_END_PATHS = ("ended_at", "outcome", "fault_code", "fault_names", "recovered", "stats.samples",
              "stats.depth_min_mm", "stats.depth_mean_mm", "stats.depth_max_mm",
              "stats.speed_burst_hz", "stats.speed_mean_hz", "stats.strokes",
              "stats.impressions")
_NO_END: list[Any] = [None, None, None, [], False, 0, None, None, None, None, None, 0, 0]
_ROWS = ("SELECT b.session_id, b.pass_id, json_extract(b.body, {begin}), "
         "json_extract(e.body, {end}) FROM records b LEFT JOIN records e "
         "ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
         "WHERE b.kind = 'pass_begin' AND b.seq >= ? AND b.seq <= ? {where} "
         "ORDER BY b.seq").format(begin=", ".join(f"'$.{p}'" for p in _BEGIN_PATHS),
                                  end=", ".join(f"'$.{p}'" for p in _END_PATHS),
                                  where="{where}")
# A JSON string value starting like a formula shows as one of these in SQLite's JSON text
# (it escapes a tab or CR as \t or \r); their absence proves no cell needs the guard.
_FORMULA_MARKS = ('"=', '"+', '"-', '"@', '"\\t', '"\\r')
_MARKED = re.compile("|".join(re.escape(m) for m in _FORMULA_MARKS))
_NUMBERS = frozenset({int, float, type(None)})  # cells the csv module writes as they are
_PLAIN = _NUMBERS | {str}


def export_csv(conn: sqlite3.Connection, out: TextIO, *, pseudonyms: Pseudonyms | None,
               where: ExportFilter) -> int:
    """Write the CSV export to `out` (header and one row per pass); return the count."""
    writer = _writer("csv", out)
    heads = _session_heads(conn, where, pseudonyms)
    clause, args = "", []
    if where.session or where.client is not None:  # whole sessions: numbers stay the same
        clause, args = "AND b.session_id IN (SELECT value FROM json_each(?))", [
            json.dumps(list(heads))]
    last = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
    return _render(conn, writer, heads, where, clause, args, (1, last), {})


def _session_heads(conn: sqlite3.Connection, where: ExportFilter,
                   pseudonyms: Pseudonyms | None) -> dict[str, list[Any]]:
    """Each selected session's cells, made once."""
    heads: dict[str, list[Any]] = {}
    for sid, text in conn.execute("SELECT session_id, body FROM records "
                                  "WHERE kind = 'session_open'"):
        body = json.loads(text)
        if where.session and not sid.startswith(where.session):
            continue
        if where.client is not None and body.get("client_ref") != where.client:
            continue
        row = {name: body.get(name) for name in SESSION_FIELDS}
        row["session_id"] = sid
        row["envelope_sha256"] = (body.get("envelope") or {}).get("sha256")
        if pseudonyms is not None:
            for name in IDENTIFYING_FIELDS:
                row[name] = pseudonyms(row[name])
        heads[sid] = [_csv_cell(row[name]) for name in SESSION_FIELDS]
    return heads


def _render(conn: sqlite3.Connection, writer: Any, heads: dict[str, list[Any]],
            where: ExportFilter, clause: str, args: list[Any], bounds: tuple[int, int],
            numbers: dict[str, int]) -> int:
    timed = where.since is not None or where.until is not None
    loads, cell, marked, count = json.loads, _csv_cell, _MARKED.search, 0
    rows = conn.execute(_ROWS.format(where=clause), [*bounds, *args])
    while batch := rows.fetchmany(4096):
        lines = []
        for sid, pass_id, begin, end in batch:
            numbers[sid] = number = numbers.get(sid, 0) + 1  # numbered before filtering
            b = loads(begin)
            if timed and not where.in_window(b[5]):
                continue
            head = heads.get(sid)
            if head is None:  # no session_open (an edited log): its cells are empty
                head = heads[sid] = [cell(sid)] + [""] * (len(SESSION_FIELDS) - 1)
            e = _NO_END if end is None else loads(end)
            # Text that no mark shows to start like a formula needs no guard (most rows).
            plain = _NUMBERS if marked(begin) or (end is not None and marked(end)) else _PLAIN
            line = [*head, cell(pass_id), number]
            line += [v if v.__class__ in plain else cell(v) for v in b[:6]]
            line += [v if v.__class__ in plain else cell(v) for v in e[:4]]
            line += ["true" if e[4] else "false", e[5] or 0]
            line += [v if v.__class__ in plain else cell(v) for v in e[6:11]]
            line += [e[11] or 0, e[12] or 0, cell(b[6])]
            lines.append(line)
        writer.writerows(lines)
        count += len(lines)
    return count
