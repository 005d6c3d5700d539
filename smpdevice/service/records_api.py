"""Read-only views of the pass logs for the service (`sessions.*`): each call opens the logs
read-only in its own thread, reads, and closes them, so it never holds up a running session.

The service reads what `smp sessions` reads, through the same code (smpdevice.records.logset,
smpdevice.records.verifying): the station's log and every other pass log beside it, whatever
its name (`logset.logs_beside`, the one finder: each pen's own log, where the service writes
while another chair's run holds the station's log, and a `smp run --db <dir>/chair2.sqlite`
log), ids resolved alike,
verified alike (this installation's key, or a refusal: never the keys a log names itself).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from smpdevice.errors import SmpError
from smpdevice.outcomes import command
from smpdevice.records import logset
from smpdevice.service.limits import LIST_PAGE_MAX

HINT = "sessions.list shows the ids"


class PageRefused(SmpError):
    """A `start`/`limit` outside what sessions.list pages: the service answers -32602."""


def _station(path: Path | None) -> Path:
    if path is None:
        from smpdevice.paths import db_path

        return db_path()
    return Path(path)


def _paths(path: Path | None) -> list[Path]:
    """The logs there are: the station's and every other pass log beside it (none yet: an
    empty list)."""
    return logset.existing(logset.logs_beside(_station(path)))


@contextlib.contextmanager
def _open_logs(path: Path | None, warnings: list[str]) -> Iterator[list[Any]]:
    """Every log open read-only, as `smp sessions` opens them without --db: one that cannot
    be opened (damaged, or a stray file named like a pen's log) is left out and named in
    `warnings` (one line each); the others are read. None opening: the first one's error."""
    skipped: list[tuple[Path, SmpError]] = []
    with logset.open_all(_paths(path), skipped=skipped) as logs:
        warnings.extend(_left_out(where, exc) for where, exc in skipped)
        try:
            yield logs
        except logset.UnknownSession as exc:
            if not skipped:
                raise
            raise logset.UnknownSession(f"{_sentence(exc)} It may be in a log that could not "
                                        f"be read: {warnings[0]}") from exc


def _left_out(where: Path, exc: Exception) -> str:
    if isinstance(exc, logset.CopiedLog):  # read once (or both, diverged): nothing left out
        return f"{_sentence(exc)} (sessions.verify fails on it until then)"
    return (f"{_sentence(exc)} Its sessions are left out; the other logs are read (check it: "
            f"{command('smp', 'sessions', 'verify', '--db', str(where))} on the service's "
            "station)")


def _sentence(error: Exception) -> str:
    text = str(error).rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _session_row(s: Any) -> dict[str, Any]:
    row = {k: v for k, v in asdict(s).items() if k not in ("passes", "screening", "envelope")}
    row["complete"] = bool(s.summary and s.summary.get("outcome") == "completed")
    return row


def list_sessions(path: Path | None, start: int | None = None,
                  limit: int = LIST_PAGE_MAX) -> dict[str, Any]:
    """Sessions `start` .. `start + limit - 1` of every log, oldest first (default: the newest
    `limit`). `total` counts them all; `truncated` says older or newer ones were left out:
    call again with `start` (`start - limit` for the page before). A negative `start` (down to
    `-limit`) is the page before the oldest ones: it lists from session 0 up to
    `start + limit - 1`, a shorter first page, and answers `start` 0 (nothing before)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIST_PAGE_MAX:
        raise PageRefused(f"limit = {limit!r} is not allowed: give 1 to {LIST_PAGE_MAX} sessions")
    if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                              or start < -limit):
        raise PageRefused(f"start = {start!r} is not allowed with limit {limit}: give the index "
                          f"of the first session to list, {-limit} or more (0 is the oldest; "
                          "a negative start lists a shorter first page from 0)")
    warnings: list[str] = []
    with _open_logs(path, warnings) as logs:
        rows = logset.all_sessions(logs)
    total = len(rows)
    first = max(total - limit, 0) if start is None else min(max(start, 0), total)
    end = first + limit if start is None else max(start + limit, 0)
    page = rows[first:end]
    return {"sessions": [_session_row(s) for s in page], "total": total, "start": first,
            "truncated": len(page) < total, "warnings": warnings}


def show(path: Path | None, session_id: str) -> dict[str, Any]:
    from smpdevice.records.signing import read_anchors

    warnings: list[str] = []
    with _open_logs(path, warnings) as logs:
        log, s = logset.find_session(logs, session_id, hint=HINT)
        sid = s.session_id
        receipt = None
        try:
            kept = [r for r in read_anchors(log.anchors_path) if r.session_id == sid]
            receipt = kept[-1].text() if kept else None
        except (OSError, SmpError):
            receipt = None
        session = _session_row(s)
        session["screening"] = s.screening
        return {"session": session, "passes": [p.as_dict() for p in s.passes],
                "receipt": receipt, "aftercare": _aftercare(s, receipt), "warnings": warnings}


def _aftercare(s: Any, receipt: str | None) -> str | None:
    """The client's sheet as it was printed at close (None while the session is open)."""
    from datetime import datetime

    from smpdevice.sessions.aftercare import aftercare_sheet

    if not s.closed_at or not s.summary:
        return None
    try:
        return aftercare_sheet(session_kind=s.session_kind, client_ref=s.client_ref,
                               session_date=datetime.fromisoformat(s.opened_at).date(),
                               summary=s.summary, receipt=receipt)
    except (ValueError, SmpError):
        return None


def verify(path: Path | None) -> dict[str, Any]:
    """Every log checked as `smp sessions verify` checks it (same code): this installation's
    key, else a refusal (NoTrustedKey); anchors beside each log. `ok`, the first `problem`,
    and per log its figures."""
    from smpdevice.records.verifying import resolve_trust, verify_all, verify_log

    station = _station(path)
    paths = logset.existing(logset.logs_beside(station))
    if not paths and not logset.deleted_beside(station):  # no session yet: nothing to check
        return {"ok": True, "problem": None, "records": 0, "head_hash": None, "logs": []}
    trust = resolve_trust()  # refuses on a station without its key: never the log's own
    logs: list[dict[str, Any]] = []
    warnings: list[str] = []
    for where in paths:  # log by log: one that cannot be opened fails alone, named
        try:
            logs.append(_checked(verify_log(where, trust)))  # as verify_all checks each
        except SmpError as exc:
            warnings.append(_left_out(where, exc))
            logs.append({"path": str(where), "ok": False, "records": 0, "head_hash": None,
                         "problem": f"cannot be read: {_sentence(exc)}", "key_fingerprints": []})
    copies = _copies(logs)  # one log in two files: named, its records counted once
    # a log deleted, its anchors left: checked too (as missing)
    logs += [_checked(c) for c in verify_all([], trust, station=station).logs]
    problem = next((x["problem"] for x in logs if x["problem"]), None)
    return {"ok": problem is None, "problem": problem,
            "records": sum(x["records"] for x in logs if x["path"] not in copies),
            "head_hash": logs[0]["head_hash"] if logs else None, "logs": logs,
            "warnings": warnings}


def _copies(logs: list[dict[str, Any]]) -> set[str]:
    """Marks each log among `logs` (checked) that holds the same log as another, as `smp
    sessions verify` does (`logset.copies`: `copied: ...`); the paths of those not read (an
    older copy or the same: their records are the other's)."""
    found = logset.copy_problems([Path(x["path"]) for x in logs if x["head_hash"]])
    for copy in found:
        entry = next(x for x in logs if x["path"] == str(copy.path))
        entry["ok"] = False
        entry["problem"] = entry["problem"] or f"copied: {copy}"
    return {str(c.path) for c in found if not isinstance(c, logset.DivergedLog)}


def _checked(c: Any) -> dict[str, Any]:
    return {"path": str(c.path), "ok": c.problem is None, "problem": c.problem,
            "records": c.audit.count, "head_hash": c.audit.head_hash,
            "key_fingerprints": c.audit.key_fingerprints}


def export(path: Path | None, fmt: Literal["jsonl", "csv"]) -> dict[str, Any]:
    out = io.StringIO(newline="")
    warnings: list[str] = []
    with _open_logs(path, warnings) as logs:
        count = logset.export_all(logs, fmt, out)
    # No cap of its own: the connection's one (limits.MAX_ANSWER_BYTES) refuses an answer
    # too large with -32000 naming max_answer_bytes, as docs/service.md says.
    return {"format": fmt, "count": count, "text": out.getvalue(), "warnings": warnings}
