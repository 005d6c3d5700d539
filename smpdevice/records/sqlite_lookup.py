"""A writer's lookups of what is still open (a session, a pass): each one or two lookups in
the records' partial unique indexes, so constant time however long the log; and a session's
resumptions."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from smpdevice import checks
from smpdevice.records.model import PassLogError
from smpdevice.records.record_types import resumption_problem
from smpdevice.records.sqlite_read import SESSION_ID_MAX_CHARS, body_of, damaged


def _resumption(seq: int, session_id: str, text: Any) -> dict[str, Any]:
    what = f"a resumption of session {session_id}"
    body = body_of(seq, what, text)
    why = resumption_problem(body)
    if why is not None:
        raise damaged(seq, what, why)
    return body


class OpenRecordLookups:
    """Mixed into `PassLog`: refuse to add to a session or pass that is unknown or over."""

    _conn: Any
    _reading: Callable[[], AbstractContextManager[None]]

    def resumptions(self, session_id: str) -> list[dict[str, Any]]:
        """The bodies of a session's `session_resume` records, oldest first."""
        checks.text("session_id", session_id, max_len=SESSION_ID_MAX_CHARS)
        with self._reading():  # an older (v3) log simply has none; a body that is no JSON
            # object, or has a field of a type no reader can use (`resumed_at` 5, a
            # `passes_left` that is no list of passes), is named with the file (parsed inside:
            # DamagedRecord, exit 3), never a traceback or a "bad file" (exit 2) where it is
            # used (review 15 B4)
            return [_resumption(seq, session_id, body) for seq, body in self._conn.execute(
                "SELECT seq, body FROM records WHERE kind = 'session_resume' AND "
                "session_id = ? ORDER BY seq", (session_id,)).fetchall()]

    def _require_open_session(self, session_id: str) -> dict[str, Any]:
        """The session's opening body; refused when it is unknown or closed."""
        # Two lookups in the partial unique indexes: constant time however long the session.
        opened = self._conn.execute(
            "SELECT body FROM records WHERE kind = 'session_open' AND session_id = ?",
            (session_id,)).fetchone()
        if opened is None:
            raise PassLogError(f"no session {session_id} in the pass log")
        if self._conn.execute("SELECT 1 FROM records WHERE kind = 'session_close' "
                              "AND session_id = ?", (session_id,)).fetchone():
            raise PassLogError(f"session {session_id} is closed; open a new session")
        return json.loads(opened[0])

    def _open_session_flag(self, session_id: str) -> bool | None:
        """`_require_open_session`, reading only the session's `simulated` flag (its body,
        with the envelope, is not parsed at every pass)."""
        opened = self._conn.execute(  # one statement: both partial-index lookups
            "SELECT json_extract(o.body, '$.simulated'), EXISTS (SELECT 1 FROM records c "
            "WHERE c.kind = 'session_close' AND c.session_id = o.session_id) FROM records o "
            "WHERE o.kind = 'session_open' AND o.session_id = ?", (session_id,)).fetchone()
        if opened is None:
            raise PassLogError(f"no session {session_id} in the pass log")
        if opened[1]:
            raise PassLogError(f"session {session_id} is closed; open a new session")
        return None if opened[0] is None else bool(opened[0])

    def _require_open_pass(self, pass_id: str) -> str:
        row = self._conn.execute(  # one statement: both partial-index lookups
            "SELECT b.session_id, EXISTS (SELECT 1 FROM records e WHERE e.kind = 'pass_end' "
            "AND e.pass_id = b.pass_id) FROM records b WHERE b.kind = 'pass_begin' "
            "AND b.pass_id = ?", (pass_id,)).fetchone()
        if row is None:
            raise PassLogError(f"no pass {pass_id} in the pass log")
        if row[1]:
            raise PassLogError(f"pass {pass_id} has already ended")
        return row[0]
