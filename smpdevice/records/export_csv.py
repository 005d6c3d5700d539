"""The CSV export of an SQLite pass log: exactly the text `export.export_records` writes, fast.

Each session's cells are made once; a pass's cells come from its two bodies, each parsed ONCE
by SQLite (one `json_extract` with many paths returns them as one JSON array; an `->>` per cell
parsed the body per cell). Every text cell is guarded (`export.csv_safe`) as the record-by-
record export does; the guard is skipped only on rows whose JSON shows no string that starts
like a formula. A batch's arrays are parsed by ONE `json.loads`; a batch whose cells hold no
comma, quote, CR, LF or NUL (counted on its text) is written as joined text, which is what
csv.writer writes for it; any other batch goes line by line, through csv.writer where a line
needs quoting. (Rendering ranges in forked processes, as verify walks, measured slower on the
2 loaded cores: one process.)
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from typing import Any, TextIO

from smpdevice.records.export import (
    _FORMULA_START,
    IDENTIFYING_FIELDS,
    ExportFilter,
    Pseudonyms,
    _csv_cell,
    _writer,
)
from smpdevice.records.export_resumed import Resumptions, latest_before
from smpdevice.records.model import SESSION_FIELDS
from smpdevice.records.sqlite_read import DamagedRecord, body_of

_BEGIN_PATHS = ("zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at",
                "simulated", "calibration.calibration_id")
_CALIBRATION_CELL = SESSION_FIELDS.index("calibration_id")
_END_PATHS = ("ended_at", "outcome", "fault_code", "fault_names", "recovered", "stats.samples",
              "stats.depth_min_mm", "stats.depth_mean_mm", "stats.depth_max_mm",
              "stats.speed_burst_hz", "stats.speed_mean_hz", "stats.strokes",
              "stats.impressions")
_NO_END: list[Any] = [None, None, None, [], False, 0, None, None, None, None, None, 0, 0]
_ROWS = ("SELECT b.session_id, b.pass_id, json_extract(b.body, {begin}), "
         "json_extract(e.body, {end}), b.seq FROM records b LEFT JOIN records e "
         "ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
         "WHERE b.kind = 'pass_begin' AND b.seq >= ? AND b.seq <= ? {where} "
         "ORDER BY b.seq").format(begin=", ".join(f"'$.{p}'" for p in _BEGIN_PATHS),
                                  end=", ".join(f"'$.{p}'" for p in _END_PATHS),
                                  where="{where}")
_NUMBERS = frozenset({int, float})  # cells whose str() is their CSV text (None is "")
_QUOTED = re.compile('["\r\n\0]')  # csv.writer quotes a cell holding one (or a comma)


def export_csv(conn: sqlite3.Connection, out: TextIO, *, pseudonyms: Pseudonyms | None,
               where: ExportFilter, resumed: Resumptions | None = None) -> int:
    """Write the CSV export to `out` (header and one row per pass); return the count.
    `resumed`: the log's resumptions (`export_resumed`), whose fields replace the opening's
    for the passes after them."""
    _writer("csv", out)  # the header
    heads = _Heads(pseudonyms, resumed or {})
    _session_heads(conn, where, heads)
    clause, args = "", []
    if where.session or where.client is not None:  # whole sessions: numbers stay the same
        clause, args = "AND b.session_id IN (SELECT value FROM json_each(?))", [
            json.dumps(list(heads.opened))]
    last = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
    return _render(conn, out, heads, where, clause, args, (1, last), {})


def _session_heads(conn: sqlite3.Connection, where: ExportFilter, heads: _Heads) -> None:
    """Each selected session's opening, kept in `heads`."""
    for seq, sid, text in conn.execute("SELECT seq, session_id, body FROM records "
                                       "WHERE kind = 'session_open'"):
        body = body_of(seq, f"the opening of session {sid}", text)  # checked first (export_sqlite)
        if where.session and not sid.startswith(where.session):
            continue
        if where.client is not None and body.get("client_ref") != where.client:
            continue
        heads.opened[sid] = body


class _Heads:
    """A session's cells, made once for its opening and once for each resumption that plays
    (its technician, calibration, ... replace the opening's: `export_resumed`)."""

    def __init__(self, pseudonyms: Pseudonyms | None, resumed: Resumptions) -> None:
        self.opened: dict[str, dict[str, Any]] = {}
        self._pseudonyms = pseudonyms
        self._resumed = resumed
        self._made: dict[tuple[str, int], list[Any]] = {}
        self.plain: dict[str, list[Any]] = {}  # a session never resumed: one lookup a row

    def cells(self, sid: str, seq: int) -> list[Any]:
        """The session cells of a pass of `sid` begun at record `seq`."""
        resumed = self._resumed.get(sid)
        if resumed is None:
            cells = self.plain[sid] = self._make(sid, {})
            return cells
        at = latest_before(resumed, seq)
        made = self._made.get((sid, at))
        if made is None:
            made = self._made[(sid, at)] = self._make(sid, {} if at < 0 else resumed[at][1])
        return made

    def _make(self, sid: str, played: dict[str, str]) -> list[Any]:
        body = self.opened.get(sid)
        if body is None:  # no session_open (an edited log): its cells are empty
            row: dict[str, Any] = dict.fromkeys(SESSION_FIELDS, "")
        else:
            row = {name: body.get(name) for name in SESSION_FIELDS}
            row["envelope_sha256"] = (body.get("envelope") or {}).get("sha256")
        row.update(played)
        row["session_id"] = sid
        if self._pseudonyms is not None:
            for name in IDENTIFYING_FIELDS:
                if row[name] != "" or body is not None:
                    row[name] = self._pseudonyms(row[name])
        return [_csv_cell(row[name]) for name in SESSION_FIELDS]


class _Sink:
    """What csv.writer writes to: the batch's text pieces, in row order."""

    def __init__(self, pieces: list[str]) -> None:
        self.write = pieces.append


def _render(conn: sqlite3.Connection, out: TextIO, heads: _Heads,
            where: ExportFilter, clause: str, args: list[Any], bounds: tuple[int, int],
            numbers: dict[str, int]) -> int:
    timed = where.since is not None or where.until is not None
    cell, needs_quotes, count, unresumed = _csv_cell, _QUOTED.search, 0, heads.plain
    starts, plain = _FORMULA_START, _NUMBERS
    pieces: list[str] = []
    quoted = csv.writer(_Sink(pieces), lineterminator="\r\n")  # as `writer`, into `pieces`
    rows = conn.execute(_ROWS.format(where=clause), [*bounds, *args])
    while batch := rows.fetchmany(4096):
        # Both bodies of every row of the batch in ONE json.loads (a call per body cost more).
        texts = [f"[{begin},{end or 'null'}]" for _, _, begin, end, _ in batch]
        joined = ",".join(texts)
        parsed = json.loads(f"[{joined}]")
        lines = []
        for (sid, pass_id, _, _, seq), (b, e) in zip(batch, parsed, strict=True):
            numbers[sid] = number = numbers.get(sid, 0) + 1  # numbered before filtering
            if timed:
                try:
                    inside = where.in_window(b[5])
                except (TypeError, ValueError):  # no time to filter by: never a traceback
                    raise DamagedRecord(f"malformed record, the start of pass {pass_id}: "
                                        "it has no usable started_at") from None
                if not inside:
                    continue
            head = unresumed.get(sid)
            if head is None:  # first seen, or a resumed session (its cells by resumption)
                head = heads.cells(sid, seq)
            if b[7].__class__ is str:  # the pass's record names its calibration (rev 20)
                head = [*head[:_CALIBRATION_CELL], cell(b[7]), *head[_CALIBRATION_CELL + 1:]]
            if e is None:
                e = _NO_END
            if pass_id.__class__ is not str or pass_id.startswith(starts):
                pass_id = cell(pass_id)
            # Every text cell is decided on its parsed value, whatever JSON spelling the body
            # used (`\u003d` is `=`): the guard is skipped only for numbers and for text that
            # does not start like a formula.
            kept = [v if v.__class__ in plain or (v.__class__ is str
                                                  and not v.startswith(starts))
                    else cell(v) for v in (*b[:6], *e[:3], *e[6:11])]
            flag = b[6]  # a 1 or 0 is no flag: `is`, not ==
            line = [*head, pass_id, number, *kept[:9],
                    "" if e[3] == [] else cell(e[3]), "true" if e[4] else "false", e[5] or 0,
                    *kept[9:], e[11] or 0, e[12] or 0,
                    "true" if flag is True else "false" if flag is False else cell(flag)]
            lines.append(line)
        # A cell with no comma, quote, CR, LF or NUL is written by csv.writer as its str(),
        # unquoted: a batch whose cells show none of them (counted) is what it writes.
        text_lines = [",".join(map(str, line)) for line in lines]
        chunk = "\r\n".join(text_lines)
        breaks = len(lines) - 1  # each line break adds one CR and one LF, no cell any
        if (chunk.count(",") == sum(map(len, lines)) - len(lines) and chunk.count("\r") == breaks
                and chunk.count("\n") == breaks and '"' not in chunk and "\0" not in chunk):
            out.write(chunk + "\r\n" if chunk else "")
        else:  # line by line, through csv.writer where a line needs it
            for line, text_line in zip(lines, text_lines, strict=True):
                if text_line.count(",") == len(line) - 1 and not needs_quotes(text_line):
                    pieces.append(text_line + "\r\n")
                else:
                    quoted.writerow(line)
            out.write("".join(pieces))
            pieces.clear()
        count += len(lines)
    return count
