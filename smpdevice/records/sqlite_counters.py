"""The pen's counters a pass's begin record keeps (`pen_counters`: `model.PEN_COUNTER_KEYS`),
read back for `PassLog`: a resume after a host crash counts the crashed pass's dots by them
(`smpdevice.sessions.crash_count`), up to the next pass begun on the same pen, whichever
session it belongs to (another client's dots are never the crashed pass's)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from typing import Any

from smpdevice import checks
from smpdevice.records.sqlite_read import SESSION_ID_MAX_CHARS


class PenCounterReads:
    """Mixed into `PassLog` (uses its `_conn` and `_reading()`)."""

    _conn: Any

    def _reading(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def pen_counters_at_begin(self, session_id: str) -> dict[str, dict[str, int]]:
        """pass id -> the `pen_counters` of each pass of the session (a pass recorded
        without them, as in a log written before they were kept, is absent)."""
        checks.text("session_id", session_id, max_len=SESSION_ID_MAX_CHARS)
        with self._reading():
            return {pass_id: json.loads(counters) for pass_id, counters in self._conn.execute(
                "SELECT pass_id, json_extract(body, '$.pen_counters') AS c FROM records "
                "WHERE kind = 'pass_begin' AND session_id = ? AND c IS NOT NULL",
                (session_id,))}

    def pen_counters_after(self, session_id: str, pass_ids: Iterable[str]
                           ) -> dict[str, tuple[dict[str, int] | None, str]]:
        """pass id (of `pass_ids`, passes of the session) -> (`pen_counters`, `started_at`) of
        the first pass of ANOTHER session of this log begun after it (in the log's order) on
        the same pen; its counters None when it was recorded without them (then how far the
        pen went before it cannot be told: review 18, never skipped); a pass with none after
        it is absent."""
        checks.text("session_id", session_id, max_len=SESSION_ID_MAX_CHARS)
        found: dict[str, tuple[dict[str, int] | None, str]] = {}
        with self._reading():
            for pass_id in pass_ids:
                row = self._conn.execute(
                    "SELECT json_extract(o.body, '$.pen_counters'), "
                    "json_extract(o.body, '$.started_at') FROM records b "
                    "JOIN records mine ON mine.kind = 'session_open' "
                    "AND mine.session_id = b.session_id "
                    "JOIN records o ON o.kind = 'pass_begin' AND o.seq > b.seq "
                    "AND o.session_id != b.session_id "
                    "JOIN records s ON s.kind = 'session_open' AND s.session_id = o.session_id "
                    "AND json_extract(s.body, '$.pen_serial') = "
                    "json_extract(mine.body, '$.pen_serial') "
                    "WHERE b.kind = 'pass_begin' AND b.pass_id = ? AND b.session_id = ? "
                    "ORDER BY o.seq LIMIT 1", (pass_id, session_id)).fetchone()
                if row is not None:
                    found[pass_id] = (json.loads(row[0]) if row[0] is not None else None,
                                      str(row[1]))
        return found
