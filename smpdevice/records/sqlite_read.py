"""The SQLite pass log's read side: sessions, passes, the raw chain and its heads."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.records.audit import StoredHead
from smpdevice.records.chain import GENESIS_HASH, ChainRecord
from smpdevice.records.model import (
    PassRecord,
    SessionRecord,
    pass_from_bodies,
    session_from_bodies,
)

SESSION_ID_MAX_CHARS = 64  # ids are "S" + 16 hex digits; a prefix is shorter


class SqliteReads:
    """Reads for `PassLog` (mixed in; uses its `_conn`, `_reading()` and `path`)."""

    _conn: Any
    path: Any

    def _reading(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def sessions(self) -> list[SessionRecord]:
        """Every session, oldest first, without their passes."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT o.session_id, o.body, c.body, "
                "(SELECT count(*) FROM records p WHERE p.session_id = o.session_id "
                " AND p.kind = 'pass_begin') "
                "FROM records o LEFT JOIN records c "
                "ON c.kind = 'session_close' AND c.session_id = o.session_id "
                "WHERE o.kind = 'session_open' ORDER BY o.seq").fetchall()
        return [session_from_bodies(sid, json.loads(o), json.loads(c) if c else None, n)
                for sid, o, c, n in rows]

    def session(self, session_id: str) -> SessionRecord:
        """One session with its passes; `session_id` may be a unique prefix of the id."""
        checks.text("session_id", session_id, max_len=SESSION_ID_MAX_CHARS)  # '' prefixes all
        with self._reading():
            rows = self._conn.execute(
                "SELECT session_id FROM records WHERE kind = 'session_open' "
                "AND substr(session_id, 1, ?) = ? LIMIT 2",
                (len(session_id), session_id)).fetchall()
            if not rows:
                raise SmpError(f"no session {session_id!r} in {self.path}; "
                               "`smp sessions list` shows the sessions")
            if len(rows) > 1:
                raise SmpError(f"{session_id!r} matches several sessions; give more of the id")
            sid = rows[0][0]
            o, c = (self._conn.execute(
                f"SELECT body FROM records WHERE kind = '{kind}' AND session_id = ?",
                (sid,)).fetchone() for kind in ("session_open", "session_close"))
        passes = self.passes(sid)
        record = session_from_bodies(sid, json.loads(o[0]), json.loads(c[0]) if c else None,
                                     len(passes))
        return SessionRecord(**{**record.__dict__, "passes": passes})

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        """Passes in the order they began: of one session, or all."""
        if session_id is not None:
            checks.text("session_id", session_id, max_len=SESSION_ID_MAX_CHARS)
        return list(self._iter_passes(session_id))

    def records(self, after_seq: int = 0) -> Iterator[ChainRecord]:
        """The chained records after `after_seq`, in order (for verify, sync and audits)."""
        with self._reading():
            cursor = self._conn.execute(
                "SELECT seq, kind, session_id, pass_id, written_at, body, prev_hash, hash "
                "FROM records WHERE seq > ? ORDER BY seq", (after_seq,))
            while rows := cursor.fetchmany(4096):
                for row in rows:
                    yield ChainRecord(*row)

    def head(self) -> tuple[int, str]:
        """(number of records, hash of the last): an anchor to keep outside this file."""
        with self._reading():
            row = self._conn.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    @property
    def log_id(self) -> str:
        """This log's id (binds its signed heads; its name in the central store)."""
        with self._reading():
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()
        return row[0] if row else ""

    def signed_heads(self) -> list[StoredHead]:
        """The permanent signed heads, in order."""
        with self._reading():
            return [StoredHead(seq, digest, fpr, sig, reason) for seq, digest, reason, fpr, sig
                    in self._conn.execute("SELECT seq, hash, reason, key_fingerprint, "
                                          "signature FROM signed_heads ORDER BY seq")]

    def current_head(self) -> StoredHead | None:
        """The signed head of the newest record (None for an empty log)."""
        with self._reading():
            row = self._conn.execute("SELECT seq, hash, key_fingerprint, signature "
                                     "FROM chain_head").fetchone()
        return StoredHead(*row) if row else None

    def _iter_passes(self, session_id: str | None) -> Iterator[PassRecord]:
        where, args = ("AND b.session_id = ?", (session_id,)) if session_id else ("", ())
        with self._reading():
            rows = self._conn.execute(
                "SELECT b.pass_id, b.session_id, b.body, e.body FROM records b "
                "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
                f"WHERE b.kind = 'pass_begin' {where} ORDER BY b.seq", args).fetchall()
        numbers: dict[str, int] = {}
        for pass_id, sid, begin, end in rows:
            numbers[sid] = number = numbers.get(sid, 0) + 1  # from 1, in the order they began
            yield pass_from_bodies(pass_id, sid, json.loads(begin),
                                   json.loads(end) if end else None, number)
