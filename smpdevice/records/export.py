"""Exports of the pass log: one row per pass, with its session's identity, as JSONL or CSV.

Columns: `EXPORT_FIELDS`, in that order, for both formats. JSONL is compact JSON, one object a
line; in CSV `fault_names` is joined with ';', booleans are true/false and None is empty.

By default an export is pseudonymous: `client_ref` and `technician` are replaced by stable
pseudonyms (`Pseudonyms`); screening answers are never exported. CSV is safe to open in a
spreadsheet: a text cell that starts with = + - @ tab or CR is prefixed with `'` (OWASP), and a
field holding a CR or LF is quoted. Passes are numbered from 1 within their session. A pass
begun after a resumption carries its technician, calibration, firmware and envelope hash, not
the opening's (`export_resumed`); a pass whose record names its calibration (rev 20: one swapped
between passes) carries that one.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from smpdevice.errors import SmpError
from smpdevice.records.model import EXPORT_FIELDS, SESSION_FIELDS, PassOutcome, PassRecord

EXPORT_FORMATS = ("jsonl", "csv")
SQL_EXPORT = sqlite3.sqlite_version_info >= (3, 38)
_BEGIN_FIELDS = ("zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at")
_COUNT_FIELDS = ("samples", "strokes", "impressions")
# Who: replaced by a pseudonym unless an identified export is asked for.
IDENTIFYING_FIELDS = ("client_ref", "technician")
# Text columns that people or pens write, which a spreadsheet could read as a formula (OWASP
# CSV injection). The others are ids, hashes, times and names from the code; pseudonyms start
# with `~`.
_TEXT_FIELDS = ("client_ref", "technician", "pen_serial", "firmware_version", "calibration_id",
                "zone", "session_kind")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Where a pass's own record names the calibration it was played on (rev 20; older records
# do not: their passes are exported with the opening's or the latest resumption's).
_PASS_CALIBRATION = "$.calibration.calibration_id"


@dataclass(frozen=True)
class ExportFilter:
    """Which passes to export: of a session (id or prefix), of a client, begun in a window."""

    session: str | None = None
    client: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def sql(self) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if self.session:
            clauses.append("substr(b.session_id, 1, ?) = ?")
            args += [len(self.session), self.session]
        if self.client is not None:
            clauses.append("o.body ->> '$.client_ref' = ?")
            args.append(self.client)
        for bound, op in ((self.since, ">="), (self.until, "<")):
            if bound is not None:
                clauses.append(f"julianday(b.body ->> '$.started_at') {op} julianday(?)")
                args.append(bound.astimezone(UTC).isoformat())
        return "".join(f" AND {c}" for c in clauses), args

    def matches(self, session_id: str, client_ref: str | None, started_at: str) -> bool:
        if self.session and not session_id.startswith(self.session):
            return False
        if self.client is not None and client_ref != self.client:
            return False
        return self.in_window(started_at)

    def in_window(self, started_at: str) -> bool:
        """Whether a pass begun at `started_at` (ISO text) is within --since/--until."""
        started = datetime.fromisoformat(started_at)
        return ((self.since is None or started >= self.since)
                and (self.until is None or started < self.until))


class Pseudonyms:
    """`~` + 16 hex of HMAC-SHA256(installation secret, value): the same person gets the same
    pseudonym in every export of this installation, and nobody without the key can map a name
    to it by trying names."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._known: dict[str, str] = {}  # few people, many passes: compute each once

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        found = self._known.get(value)
        if found is None:
            digest = hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()
            found = self._known[value] = "~" + digest[:16]
        return found


def csv_safe(value: Any) -> Any:
    """OWASP: a text cell starting with = + - @ tab or CR is prefixed with a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _guard(expr: str) -> str:
    expr = f"({expr})"  # `||` binds like `->>`: without brackets it would apply to the body
    return (f"CASE WHEN substr({expr}, 1, 1) IN ('=', '+', '-', '@', char(9), char(13)) "
            f"THEN '''' || {expr} ELSE {expr} END")


def _export_sql(fmt: str, pseudonymous: bool, where: str, resumed: bool = False) -> str:
    """One SELECT producing export rows: a JSON object per pass, or the CSV columns. With
    `resumed` (the log holds resumptions), `RESUMED_FIELDS` come from the latest resumption
    before each pass (`export_resumed`)."""
    from smpdevice.records.export_resumed import (
        RESUMED_FIELDS,
        field_sql,
        numbered_passes,
        resumed_fields_sql,
    )

    as_json = fmt == "jsonl"
    op = "->" if as_json else "->>"
    exprs = []
    for name in EXPORT_FIELDS:
        if name in ("session_id", "pass_id"):
            expr = f"b.{name}"
        elif name == "pass_number":
            expr = "b.n"
        elif name == "calibration_id":  # the pass's own (rev 20), else as before
            before = field_sql(name) if resumed else f"o.body {op} '$.{name}'"
            expr = (f"CASE WHEN json_type(b.body, '{_PASS_CALIBRATION}') = 'text' THEN "
                    f"b.body ->> '{_PASS_CALIBRATION}' ELSE {before} END")
        elif resumed and name in RESUMED_FIELDS:  # text (a string in a JSON line)
            expr = (f"pseudonym({field_sql(name)})" if pseudonymous
                    and name in IDENTIFYING_FIELDS else field_sql(name))
        elif name == "envelope_sha256":
            expr = f"o.body {op} '$.envelope.sha256'"
        elif name == "simulated":  # true/false, or unknown (null, empty) in older logs
            expr = ("b.body -> '$.simulated'" if as_json else
                    "CASE b.body ->> '$.simulated' WHEN 1 THEN 'true' WHEN 0 THEN 'false' "
                    "ELSE '' END")
        elif name in IDENTIFYING_FIELDS and pseudonymous:
            expr = f"pseudonym(o.body ->> '$.{name}')"
        elif name in SESSION_FIELDS:
            expr = f"o.body {op} '$.{name}'"
        elif name in _BEGIN_FIELDS:
            expr = f"b.body {op} '$.{name}'"
        elif name in ("ended_at", "outcome", "fault_code"):
            expr = f"e.body {op} '$.{name}'"
        elif name == "fault_names":
            expr = ("json(coalesce(e.body -> '$.fault_names', '[]'))" if as_json else
                    "coalesce((SELECT group_concat(value, ';') "
                    "FROM json_each(e.body, '$.fault_names')), '')")
        elif name == "recovered":
            flag = "CASE WHEN e.body ->> '$.recovered' THEN 'true' ELSE 'false' END"
            expr = f"json({flag})" if as_json else flag
        elif name in _COUNT_FIELDS:
            expr = (f"json(coalesce(e.body -> '$.stats.{name}', '0'))" if as_json
                    else f"coalesce(e.body ->> '$.stats.{name}', 0)")
        else:
            expr = f"e.body {op} '$.stats.{name}'"
        if not as_json and name in _TEXT_FIELDS and not (pseudonymous
                                                         and name in IDENTIFYING_FIELDS):
            expr = _guard(expr)
        exprs.append(f"'{name}', {expr}" if as_json else expr)
    select = f"json_object({', '.join(exprs)})" if as_json else ", ".join(exprs)
    # Numbered before filtering: a pass keeps its number in a filtered export.
    resumption = "LEFT JOIN resumed r ON r.seq = b.rseq " if resumed else ""
    return (f"{resumed_fields_sql() if resumed else ''}"
            f"SELECT {select} FROM {numbered_passes(resumed)} b "
            "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
            "LEFT JOIN records o ON o.kind = 'session_open' AND o.session_id = b.session_id "
            f"{resumption}WHERE 1 {where} ORDER BY b.seq")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(map(str, value))
    return csv_safe(value)


def check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise SmpError(f"unknown export format {fmt!r}: use jsonl or csv")


def check_request(fmt: str, out: object) -> None:
    """The format, and `out` a text stream (anything with a write taking str), before any row
    is read: a None or a binary stream failed mid-export with a bare error."""
    check_format(fmt)
    if not callable(getattr(out, "write", None)) or isinstance(
            out, (io.RawIOBase, io.BufferedIOBase, bytearray)):
        from smpdevice.checks import InvalidArgument

        raise InvalidArgument(f"out must be a text stream (open(path, 'w'), io.StringIO, "
                              f"sys.stdout); it is a {type(out).__name__}: nothing was written")


def _writer(fmt: str, out: TextIO) -> Any:
    # CRLF rows (RFC 4180): a CR or LF inside a field is then always quoted, never a new row.
    writer = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_FIELDS)
    return writer


def export_sqlite(conn: sqlite3.Connection, fmt: str, out: TextIO, *,
                  pseudonyms: Pseudonyms | None, where: ExportFilter | None = None) -> int:
    """Export straight from an SQLite pass log (needs SQLite >= 3.38, `SQL_EXPORT`).

    JSONL lines are built by SQLite's JSON functions (`->` keeps each number's stored text, so
    nothing is rounded on the way out); CSV by `export_csv`, which writes what
    `export_records` writes. Figures: docs/performance.md, "Records".
    """
    from smpdevice.records.export_resumed import resumptions

    check_format(fmt)
    check_session_heads(conn)  # before any row: an export never has a damaged header's nulls
    resumed = resumptions(conn)  # checked before any row too (a damaged one: exit 3)
    if fmt == "csv":
        from smpdevice.records.export_csv import export_csv

        return export_csv(conn, out, pseudonyms=pseudonyms, where=where or ExportFilter(),
                          resumed=resumed)
    writer = _writer(fmt, out)
    if pseudonyms is not None:
        conn.create_function("pseudonym", 1, pseudonyms, deterministic=True)
    clauses, args = (where or ExportFilter()).sql()
    cursor = conn.execute(_export_sql(fmt, pseudonyms is not None, clauses, bool(resumed)),
                          args)
    count = 0
    while rows := cursor.fetchmany(4096):
        if writer:
            writer.writerows(rows)
        else:
            out.write("\n".join(row[0] for row in rows))
            out.write("\n")
        count += len(rows)
    return count


# The opening fields every row of an export carries (the schema says string): a session
# opening without one is damaged, never exported as nulls.
HEADER_KEYS = tuple(name for name in SESSION_FIELDS if name not in ("session_id",
                                                                    "envelope_sha256"))
# Each present and text (a number or null there is damage, never a cell); an envelope, when
# recorded, an object whose sha256 is text or null.
_DAMAGED_HEADS = ("SELECT seq, session_id, body FROM records WHERE kind = 'session_open' AND NOT "
                  "CASE WHEN json_valid(body) THEN json_type(body) = 'object' AND "
                  + " AND ".join(f"json_type(body, '$.{k}') IS 'text'" for k in HEADER_KEYS)
                  + " AND coalesce(json_type(body, '$.envelope'), 'null') IN ('object', 'null')"
                  " AND coalesce(json_type(body, '$.envelope.sha256'), 'null') "
                  "IN ('text', 'null') ELSE 0 END ORDER BY seq LIMIT 1")


def check_session_heads(conn: sqlite3.Connection) -> None:
    """Raise `DamagedRecord` (a read error: the reader names its file, exit 3) for the first
    session opening whose body is no JSON object, or lacks a field the export writes, or holds
    it with a type no export can write (`record_types`)."""
    from smpdevice.records.record_types import opening_problem
    from smpdevice.records.sqlite_read import body_of, damaged

    row = conn.execute(_DAMAGED_HEADS).fetchone()
    if row is not None:
        seq, sid, text = row
        what = f"the opening of session {sid}"
        body = body_of(seq, what, text)
        missing = next((k for k in HEADER_KEYS if k not in body), None)
        raise damaged(seq, what, f"it has no {missing}" if missing else
                      opening_problem(body) or "a field has a type no export can write")


def export_records(passes: Iterable[PassRecord], session_bodies: Mapping[str, dict[str, Any]],
                   fmt: str, out: TextIO, *, pseudonyms: Pseudonyms | None,
                   where: ExportFilter | None = None,
                   played_by: Mapping[str, Mapping[str, str]] | None = None) -> int:
    """The same export from records of any backend: passes in order, each session's opening
    body by id, and by pass id the fields of the resumption a pass was played after
    (`export_resumed.played_by`: its technician, calibration, ...)."""
    from smpdevice.records.export_resumed import played_calibration_id
    from smpdevice.records.model import PassLogError
    from smpdevice.records.record_types import opening_problem

    check_format(fmt)
    for sid, body in session_bodies.items():  # before any row, as `check_session_heads`
        why = (opening_problem(body) if isinstance(body, dict)
               else "its body is not a JSON object")
        if why is not None:
            raise PassLogError(f"malformed record, the opening of session {sid}: {why}; the "
                               "pass log is damaged: restore it from a backup")
    writer = _writer(fmt, out)
    count = 0
    for p in passes:
        s = session_bodies.get(p.session_id, {})
        row = {name: s.get(name) for name in SESSION_FIELDS}
        row["envelope_sha256"] = (s.get("envelope") or {}).get("sha256")
        row.update((played_by or {}).get(p.pass_id, {}))
        row.update(p.__dict__)
        played_on = played_calibration_id(p.calibration)  # its own record's (rev 20)
        if played_on is not None:
            row["calibration_id"] = played_on
        row["pass_number"] = p.number
        if where is not None and not where.matches(p.session_id, row["client_ref"],
                                                   p.started_at):
            continue
        if pseudonyms is not None:
            for name in IDENTIFYING_FIELDS:
                row[name] = pseudonyms(row[name])
        if writer:
            writer.writerow(_csv_cell(row[name]) for name in EXPORT_FIELDS)
        else:
            out.write(json.dumps({name: row[name] for name in EXPORT_FIELDS},
                                 separators=(",", ":"), ensure_ascii=False))
            out.write("\n")
        count += 1
    return count


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    "session_id": {"type": "string", "description": "the session's id (S + 16 hex)"},
    "client_ref": {"type": "string", "description": "the client's reference; a pseudonym "
                   "(~ + 16 hex) unless the export was asked --identified"},
    "technician": {"type": "string", "description": "who played this pass: who opened the "
                   "session, or who resumed it last before this pass; a pseudonym unless "
                   "--identified"},
    "firmware_version": {"type": "string", "description": "the pen's firmware for this pass "
                         "(at the opening, or at the latest resumption before it)"},
    "calibration_id": {"type": "string", "description": "the calibration this pass was played "
                       "on: as its own record names it, else (records written before passes "
                       "named it) the opening's, or the latest resumption's before it"},
    "envelope_sha256": {"type": ["string", "null"],
                        "description": "hash of the safety envelope in force for this pass "
                                       "(at the opening, or at the latest resumption before "
                                       "it); null if not recorded"},
    "pass_number": {"type": "integer", "minimum": 1,
                    "description": "the pass's place in its session, from 1"},
    "depth_mm": {"type": "number"}, "speed_hz": {"type": "number"},
    "duty_pct": {"type": "number"}, "period_ms": {"type": "number"},
    "started_at": {"type": "string", "format": "date-time"},
    "ended_at": {"type": ["string", "null"], "format": "date-time",
                 "description": "null while the pass is in progress"},
    "outcome": {"type": ["string", "null"],
                "enum": [*(o.value for o in PassOutcome), None]},
    "fault_code": {"type": ["integer", "null"]},
    "fault_names": {"type": "array", "items": {"type": "string"}},
    "recovered": {"type": "boolean",
                  "description": "ended by crash recovery (outcome controller_crashed)"},
    "samples": {"type": "integer", "minimum": 0},
    "strokes": {"type": "integer", "minimum": 0},
    "impressions": {"type": "integer", "minimum": 0},
    "depth_min_mm": _NUMBER_OR_NULL, "depth_mean_mm": _NUMBER_OR_NULL,
    "depth_max_mm": _NUMBER_OR_NULL,
    "speed_burst_hz": {"type": ["number", "null"],
                       "description": "mean speed while the motor turns (bursts)"},
    "speed_mean_hz": {"type": ["number", "null"],
                      "description": "duty-weighted mean speed over the whole pass"},
    "simulated": {"type": ["boolean", "null"],
                  "description": "the pen was the simulator; null: not recorded (older log)"},
}


def jsonl_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one line of `smp sessions export --format jsonl`."""
    properties = {name: _SCHEMA_TYPES.get(name, {"type": "string"}) for name in EXPORT_FIELDS}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "smpdevice pass record (one JSONL line)",
        "type": "object",
        "properties": properties,
        "required": list(EXPORT_FIELDS),
        "additionalProperties": False,
    }
