"""Read-only views of the pass log for the service (`sessions.*`): each call opens the log
read-only in its own thread, reads, and closes it, so it never holds up a running session."""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog

MAX_EXPORT_CHARS = 8 * 1024 * 1024  # an answer must stay a sane WebSocket message


def _open(path: Path | None) -> PassLog:
    return PassLog.open(path, readonly=True)


def _session_row(s: Any) -> dict[str, Any]:
    row = {k: v for k, v in asdict(s).items() if k not in ("passes", "screening", "envelope")}
    row["complete"] = bool(s.summary and s.summary.get("outcome") == "completed")
    return row


def list_sessions(path: Path | None) -> dict[str, Any]:
    if path is not None and not Path(path).exists():
        return {"sessions": []}  # no session yet: the first one creates the log
    with _open(path) as log:
        return {"sessions": [_session_row(s) for s in log.sessions()][-500:]}


def show(path: Path | None, session_id: str) -> dict[str, Any]:
    from smpdevice.records.signing import read_anchors

    with _open(path) as log:
        try:
            s = log.session(session_id)
        except (KeyError, SmpError) as exc:
            raise SmpError(f"no session {session_id!r} in the pass log; sessions.list shows "
                           "the ids") from exc
        receipt = None
        try:
            kept = [r for r in read_anchors(log.anchors_path) if r.session_id == session_id]
            receipt = kept[-1].text() if kept else None
        except (OSError, SmpError):
            receipt = None
        session = _session_row(s)
        session["screening"] = s.screening
        return {"session": session, "passes": [p.as_dict() for p in s.passes],
                "receipt": receipt, "aftercare": _aftercare(s, receipt)}


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
    from smpdevice.records.keys import load_public

    own = load_public()
    with _open(path) as log:
        result = log.audit(trusted={own.fingerprint: own} if own else None)
    problem = result.problem
    return {"ok": problem is None, "problem": None if problem is None else str(problem),
            "records": result.count, "head_hash": result.head_hash}


def export(path: Path | None, fmt: Literal["jsonl", "csv"]) -> dict[str, Any]:
    out = io.StringIO()
    with _open(path) as log:
        count = log.export(fmt, out)
    text = out.getvalue()
    if len(text) > MAX_EXPORT_CHARS:
        raise SmpError(f"the export is {len(text)} characters, over the service's cap of "
                       f"{MAX_EXPORT_CHARS}; use `smp sessions export` on this station")
    return {"format": fmt, "count": count, "text": text}
