"""The check in `PassLog.resume_session`'s own write transaction that a resumption is the one
its resume read: two resumes of one session (two programs, two threads past their checks)
would each record resumption N, and the session's parts would read as altered (review 19);
and a resume whose plan was made from fewer (or more) passes than the log holds now would
play again a pass played meanwhile (review 19, fix 3)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from smpdevice.errors import SmpError


class ResumedMeanwhile(SmpError):
    """Another resume recorded a resumption of this session, or played passes of it, since
    this one read them."""

    exit_code = 2


def require_next(conn: sqlite3.Connection, session_id: str, details: dict[str, Any]) -> None:
    """Refuse (ResumedMeanwhile, nothing written) a `session_resume` whose `number` is not above
    every number the session's `session_resume` records carry, or whose `passes_before` (the
    passes its plan was made from) is not the number of passes the session holds now (read in
    the write transaction, so no other writer comes between). A body without `number` (a count
    kept, which plays nothing) is not numbered; a recorded body that cannot be read is named by
    its readers."""
    number = details.get("number")
    if number is None:
        return
    recorded = []
    for (body,) in conn.execute("SELECT body FROM records WHERE session_id = ? AND "
                                "kind = 'session_resume' ORDER BY seq", (session_id,)):
        try:
            value = json.loads(body).get("number")
        except (ValueError, TypeError, AttributeError):
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            recorded.append(value)
    last = max(recorded, default=0)
    if isinstance(number, bool) or not isinstance(number, int) or number <= last:
        raise ResumedMeanwhile(
            f"session {session_id} was resumed meanwhile (resumption {last} is recorded; this "
            f"resume would record resumption {number!r}): nothing was recorded; resume it "
            "again, from one program at a time")
    require_same_passes(conn, session_id, details.get("passes_before"))


def require_same_passes(conn: sqlite3.Connection, session_id: str, planned_from: Any) -> None:
    """Refuse (ResumedMeanwhile, nothing written) a resume planned from `planned_from` passes
    when the session holds another number now (a pass begun meanwhile, by another program or
    thread, would be planned and played again). A resume that says no `passes_before` (a
    numbered body written before resumes kept it) is not checked: it gives nothing to check."""
    if planned_from is None:
        return
    (held,) = conn.execute("SELECT count(*) FROM records WHERE session_id = ? AND "
                           "kind = 'pass_begin'", (session_id,)).fetchone()
    if isinstance(planned_from, bool) or not isinstance(planned_from, int) \
            or planned_from != held:
        raise ResumedMeanwhile(
            f"session {session_id} holds {held} passes now, and this resume planned from "
            f"{planned_from!r}: passes were played meanwhile (by another program?); nothing "
            "was recorded; resume it again, from one program at a time")
