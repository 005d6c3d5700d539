"""Who played a pass, and on what: the fields a resumption changes for the passes after it.

A session resumed (`smp run --resume`, the service's `session.resume`) may go on with another
technician, on a new calibration (a recalibration after a jam), another firmware or another
envelope: its `session_resume` record says which. Every pass begun after it (up to the next
one) is exported with these, not the opening's: `RESUMED_FIELDS` come from the latest
resumption before the pass that plays (one that only keeps a crash's count, `count_only`,
plays nothing and changes nothing), each where it records it as text, else from the opening.
A pass whose own record names its calibration (rev 20: `pass_begin` `calibration`, so one
swapped between passes) is exported with that one (`played_calibration_id`); older records
name none. The three export paths (SQL JSONL, fast CSV, record by record) apply this one rule.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Mapping
from typing import Any

# Export column -> the `session_resume` body's field (the opening keeps them as `technician`,
# ..., `envelope.sha256`).
RESUMED_FIELDS = ("technician", "firmware_version", "calibration_id", "envelope_sha256")

Resumptions = dict[str, list[tuple[int, dict[str, str]]]]


def played_with(body: Mapping[str, Any]) -> dict[str, str]:
    """The export fields a resumption sets for the passes after it."""
    return {name: body[name] for name in RESUMED_FIELDS if isinstance(body.get(name), str)}


def resumptions(conn: sqlite3.Connection) -> Resumptions:
    """Each resumed session's resumptions that play: (seq, `played_with`), oldest first. Every
    resumption body is checked as a resume reads it (`DamagedRecord`, exit 3, names the first
    damaged one) before any row is written."""
    from smpdevice.records.sqlite_lookup import _resumption

    found: Resumptions = {}
    for seq, sid, text in conn.execute("SELECT seq, session_id, body FROM records "
                                       "WHERE kind = 'session_resume' ORDER BY seq"):
        body = _resumption(seq, sid, text)
        if not body.get("count_only"):
            found.setdefault(sid, []).append((seq, played_with(body)))
    return found


def played_calibration_id(calibration: Any) -> str | None:
    """The id a pass record's own `calibration` names as text (rev 20: it wins over the
    opening's and any resumption's); None for a record written before passes named it."""
    cid = calibration.get("calibration_id") if isinstance(calibration, dict) else None
    return cid if isinstance(cid, str) else None


def latest_before(resumed: list[tuple[int, dict[str, str]]], seq: int) -> int:
    """The index in `resumed` of the latest resumption before record `seq`, or -1."""
    return bisect.bisect_left(resumed, seq, key=lambda item: item[0]) - 1


def played_by(conn: sqlite3.Connection, resumed: Resumptions) -> dict[str, dict[str, str]]:
    """pass id -> the fields of the resumption it was played after (passes of resumed sessions
    begun after a resumption only): for an export that reads passes without their seq."""
    found: dict[str, dict[str, str]] = {}
    for sid, items in resumed.items():
        for pass_id, seq in conn.execute("SELECT pass_id, seq FROM records WHERE kind = "
                                         "'pass_begin' AND session_id = ?", (sid,)):
            at = latest_before(items, seq)
            if at >= 0:
                found[pass_id] = items[at][1]
    return found


def openings_and_played(conn: sqlite3.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """For the record-by-record export: each session's opening body by id, and `played_by`."""
    import json

    openings = {sid: json.loads(body) for sid, body in conn.execute(
        "SELECT session_id, body FROM records WHERE kind = 'session_open'")}
    return openings, played_by(conn, resumptions(conn))


def numbered_passes(resumed: bool) -> str:
    """The SQL export's passes, numbered within their session before any filter; with
    `resumed`, each also with `rseq`, the seq of the latest resumption before it that plays."""
    if not resumed:  # no resumption in the log: the plain numbering (no window over resumes)
        return ("(SELECT *, row_number() OVER (PARTITION BY session_id ORDER BY seq) AS n, "
                "NULL AS rseq FROM records WHERE kind = 'pass_begin')")
    return ("(SELECT * FROM (SELECT *, count(*) FILTER (WHERE kind = 'pass_begin') OVER w AS n, "
            "max(seq) FILTER (WHERE kind = 'session_resume' AND NOT coalesce("
            "body ->> '$.count_only', 0)) OVER w AS rseq FROM records "
            "WHERE kind IN ('pass_begin', 'session_resume') "
            "WINDOW w AS (PARTITION BY session_id ORDER BY seq)) WHERE kind = 'pass_begin')")


def resumed_fields_sql() -> str:
    """Each playing resumption's `RESUMED_FIELDS` (NULL where not text), each body parsed
    once (a `CASE` on the body per cell parsed it up to 8 times a pass)."""
    cells = ", ".join(f"CASE WHEN json_type(body, '$.{name}') = 'text' THEN body ->> "
                      f"'$.{name}' END AS {name}" for name in RESUMED_FIELDS)
    return (f"WITH resumed AS MATERIALIZED (SELECT seq, {cells} FROM records "
            "WHERE kind = 'session_resume') ")


def field_sql(name: str) -> str:
    """A resumed field's text for pass `b`: the resumption's when it records it as text, else
    the opening `o`'s (text, or null for an unrecorded envelope: `check_session_heads`)."""
    opened = "$.envelope.sha256" if name == "envelope_sha256" else f"$.{name}"
    return f"coalesce(r.{name}, o.body ->> '{opened}')"
