"""Exports of the pass log: one row per pass, with its session's identity, as JSONL or CSV.

Columns: `EXPORT_FIELDS`, in that order, for both formats. JSONL is compact JSON, one object a
line; in CSV `fault_names` is joined with ';', booleans are true/false and None is empty.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from smpdevice.errors import SmpError
from smpdevice.records.model import EXPORT_FIELDS, SESSION_FIELDS, PassRecord

EXPORT_FORMATS = ("jsonl", "csv")
SQL_EXPORT = sqlite3.sqlite_version_info >= (3, 38)
_BEGIN_FIELDS = ("index", "zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at")
_COUNT_FIELDS = ("samples", "strokes", "impressions")


def _export_sql(fmt: str) -> str:
    """One SELECT producing export rows: a JSON object per pass, or the CSV columns."""
    as_json = fmt == "jsonl"
    op = "->" if as_json else "->>"
    exprs = []
    for name in EXPORT_FIELDS:
        if name in ("session_id", "pass_id"):
            expr = f"b.{name}"
        elif name == "envelope_sha256":
            expr = f"o.body {op} '$.envelope.sha256'"
        elif name == "simulated":  # true/false, or unknown (null, empty) in older logs
            expr = ("b.body -> '$.simulated'" if as_json else
                    "CASE b.body ->> '$.simulated' WHEN 1 THEN 'true' WHEN 0 THEN 'false' "
                    "ELSE '' END")
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
        exprs.append(f"'{name}', {expr}" if as_json else expr)
    select = f"json_object({', '.join(exprs)})" if as_json else ", ".join(exprs)
    return (f"SELECT {select} FROM records b "
            "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
            "LEFT JOIN records o ON o.kind = 'session_open' AND o.session_id = b.session_id "
            "WHERE b.kind = 'pass_begin' ORDER BY b.seq")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(map(str, value))
    return value



def check_format(fmt: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise SmpError(f"unknown export format {fmt!r}: use jsonl or csv")


def _writer(fmt: str, out: TextIO) -> Any:
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer:
        writer.writerow(EXPORT_FIELDS)
    return writer


def export_sqlite(conn: sqlite3.Connection, fmt: str, out: TextIO) -> int:
    """Export straight from an SQLite pass log (needs SQLite >= 3.38, `SQL_EXPORT`).

    Built by SQLite's JSON functions: 100k passes in well under the 2 s goal. `->` keeps each
    number's stored text, so nothing is rounded on the way out.
    """
    check_format(fmt)
    writer = _writer(fmt, out)
    cursor = conn.execute(_export_sql(fmt))
    count = 0
    while rows := cursor.fetchmany(4096):
        if writer:
            writer.writerows(rows)
        else:
            out.write("\n".join(row[0] for row in rows))
            out.write("\n")
        count += len(rows)
    return count


def export_records(passes: Iterable[PassRecord], session_bodies: Mapping[str, dict[str, Any]],
                   fmt: str, out: TextIO) -> int:
    """The same export from records of any backend: passes in order, and each session's
    opening body by id."""
    check_format(fmt)
    writer = _writer(fmt, out)
    count = 0
    for p in passes:
        s = session_bodies.get(p.session_id, {})
        row = {name: s.get(name) for name in SESSION_FIELDS}
        row["envelope_sha256"] = (s.get("envelope") or {}).get("sha256")
        row.update(p.__dict__)
        if writer:
            writer.writerow(_csv_cell(row[name]) for name in EXPORT_FIELDS)
        else:
            out.write(json.dumps({name: row[name] for name in EXPORT_FIELDS},
                                 separators=(",", ":"), ensure_ascii=False))
            out.write("\n")
        count += 1
    return count
