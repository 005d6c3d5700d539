"""The SQLite pass log's read side: sessions, passes, the raw chain and its heads."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from smpdevice import checks
from smpdevice.errors import SmpError
from smpdevice.records import record_types
from smpdevice.records.audit import StoredHead
from smpdevice.records.chain import GENESIS_HASH, ChainRecord
from smpdevice.records.model import (
    PassRecord,
    SessionRecord,
    pass_from_bodies,
    session_from_bodies,
)

SESSION_ID_MAX_CHARS = 64  # ids are "S" + 16 hex digits; a prefix is shorter


class DamagedRecord(sqlite3.DatabaseError):
    """A record body that is no JSON object, lacks a field every such record has, or holds a
    field of a type no reader can use (`record_types`) (a bad sector, an edit). An sqlite3
    error raised inside a read on purpose: each reader's own mapping (`_reading`,
    `storage_error`) then names the file, and the command says in one line that the log is
    damaged (exit 3), as SQLite's own "malformed JSON" does."""


def damaged(seq: int, what: str, why: str) -> DamagedRecord:
    return DamagedRecord(f"malformed record {seq}, {what}: {why}")


def body_of(seq: int, what: str, text: Any) -> dict[str, Any]:
    """The JSON object of record `seq`'s body; DamagedRecord when it is none."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        raise damaged(seq, what, "its body is not JSON") from None
    if not isinstance(value, dict):
        raise damaged(seq, what, "its body is not a JSON object")
    return value


def _session_of(sid: str, o_seq: int, o: Any, c_seq: int | None, c: Any,
                count: int) -> SessionRecord:
    opening = body_of(o_seq, f"the opening of session {sid}", o)
    closing = None if c is None or c_seq is None else body_of(
        c_seq, f"the close of session {sid}", c)
    if closing == {}:  # read as "still open" by the model: a close record says otherwise
        raise damaged(c_seq or o_seq, f"the close of session {sid}", "its body is empty")
    try:
        record = session_from_bodies(sid, opening, closing, count)
    except (KeyError, TypeError) as exc:
        on_close = closing is not None and exc.args and exc.args[0] in ("closed_at", "summary")
        seq, what = (c_seq, "close") if on_close else (o_seq, "opening")
        raise damaged(seq or o_seq, f"the {what} of session {sid}",
                      f"it has no {exc.args[0] if exc.args else 'required field'}") from None
    why = record_types.opening_problem(opening)  # present, but of a type no reader can use
    if why is not None:
        raise damaged(o_seq, f"the opening of session {sid}", why)
    why = None if closing is None else record_types.closing_problem(record)
    if why is not None:
        raise damaged(c_seq or o_seq, f"the close of session {sid}", why)
    return record


_BEGIN_KEYS = ("index", "zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at")


def _pass_of(pass_id: str, sid: str, b_seq: int, b: Any, e_seq: int | None, e: Any,
             number: int) -> PassRecord:
    begin = body_of(b_seq, f"the start of pass {pass_id}", b)
    end = None if e is None or e_seq is None else body_of(e_seq, f"the end of pass {pass_id}", e)
    if end == {}:  # read as "in progress" by the model: an end record says otherwise
        raise damaged(e_seq or b_seq, f"the end of pass {pass_id}", "its body is empty")
    try:
        record = pass_from_bodies(pass_id, sid, begin, end, number)
    except (KeyError, TypeError) as exc:  # a missing field, or stats that are no object
        field = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else "stats"
        if field in _BEGIN_KEYS or e_seq is None:
            raise damaged(b_seq, f"the start of pass {pass_id}", f"it has no {field}") from None
        raise damaged(e_seq, f"the end of pass {pass_id}", f"it has no usable {field}") \
            from None
    why = record_types.begin_problem(record)  # present, but of a type no reader can use
    if why is not None:
        raise damaged(b_seq, f"the start of pass {pass_id}", why)
    why = None if end is None or e_seq is None else record_types.end_problem(record)
    if why is not None:
        raise damaged(e_seq or b_seq, f"the end of pass {pass_id}", why)
    return record


class SqliteReads:
    """Reads for `PassLog` (mixed in; uses its `_conn`, `_reading()` and `path`)."""

    _conn: Any
    path: Any

    def _reading(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def check_storage(self) -> None:
        """SQLite's `PRAGMA quick_check`: every page, index and record of the file is sound. A
        damaged page (a bad sector, a torn write) that the chain's full scan never reads, an
        index say, is named (PassLogError, exit 3: restore it from a backup), as a writer
        refuses the file. About 0.5 s for 1,000,000 records (578 MB) on this machine."""
        with self._reading():
            found = [row[0] for row in self._conn.execute("PRAGMA quick_check(3)")]
            if found != ["ok"]:  # one line: the first problems SQLite names, not its headers
                lines = [line.strip() for text in found for line in str(text).splitlines()
                         if line.strip() and not line.startswith("***")]
                raise DamagedRecord("malformed: " + "; ".join(lines[:2])[:200])

    def sessions(self) -> list[SessionRecord]:
        """Every session, oldest first, without their passes."""
        with self._reading():  # parsed inside: a damaged body is named with the file
            rows = self._conn.execute(
                "SELECT o.session_id, o.seq, o.body, c.seq, c.body, "
                "(SELECT count(*) FROM records p WHERE p.session_id = o.session_id "
                " AND p.kind = 'pass_begin') "
                "FROM records o LEFT JOIN records c "
                "ON c.kind = 'session_close' AND c.session_id = o.session_id "
                "WHERE o.kind = 'session_open' ORDER BY o.seq").fetchall()
            return [_session_of(*row) for row in rows]

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
                f"SELECT seq, body FROM records WHERE kind = '{kind}' AND session_id = ?",
                (sid,)).fetchone() for kind in ("session_open", "session_close"))
            passes = self.passes(sid)
            record = _session_of(sid, o[0], o[1], c[0] if c else None, c[1] if c else None,
                                 len(passes))
        return SessionRecord(**{**record.__dict__, "passes": passes})

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        """Passes in the order they began: of one session, or all (`session_id` None)."""
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
        with self._reading():  # a log of schema 2 has none (written before heads were signed)
            if not self._conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                      "name = 'meta'").fetchone():
                return ""
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
        numbers: dict[str, int] = {}
        with self._reading():  # parsed inside: a damaged body is named with the file
            rows = self._conn.execute(
                "SELECT b.pass_id, b.session_id, b.seq, b.body, e.seq, e.body FROM records b "
                "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
                f"WHERE b.kind = 'pass_begin' {where} ORDER BY b.seq", args).fetchall()
            found = []
            for pass_id, sid, b_seq, begin, e_seq, end in rows:
                numbers[sid] = number = numbers.get(sid, 0) + 1  # from 1, in the order begun
                found.append(_pass_of(pass_id, sid, b_seq, begin, e_seq, end, number))
        yield from found
