"""The SQLite pass log's schema as smpdevice wrote it, and a writer's checked statements.

- **The schema** (`schema_problem`): the tables, indexes, triggers and views of a log must be
  exactly those its schema version's migrations create (`sqlite_schema.MIGRATIONS`). Nothing
  else in the file is covered by a signature, yet a trigger added to it (`RAISE(IGNORE)` on a
  `pass_begin`, say) would drop or alter what the next writer records, and a column added to
  `records` would stop every writer. `smp sessions verify` and a writer's open name what was
  added, removed or changed (review 18).
- **A log's keys and its signing** (`damaged_key`, `once_signed`): a `signing_keys` row that
  holds no key, and a log stripped of its signatures (passed off as an older schema) though
  its records name a key or its anchors file holds receipts, are named by verify as a writer
  refuses them: one rule, `signed_evidence`, for both (reviews 18b, 19).
- **A writer's statements** (`insert_record`, `checked`): each must change exactly the one row
  it writes, and that row must read back as written; else (a trigger added while the writer
  held the log) the transaction is refused whole (`LogAltered`), before the needle runs.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smpdevice.records.sqlite_recovery import LogAltered

_Objects = dict[tuple[str, str], tuple[Any, ...]]  # (type, name) -> (table, tokens, layout)
# A token of SQL: a string literal (kept exactly), a quoted name, a word or one character.
_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[[^\]]*\]|\w+|\S")
# SQLite's own objects, which no migration creates: autoindexes (no SQL), statistics and the
# AUTOINCREMENT counters. Never a trigger or a view: those are made by hand (review 18b).
_OWN = ("(type = 'index' AND name LIKE 'sqlite\\_autoindex\\_%' ESCAPE '\\' AND sql IS NULL) OR "
        "(type = 'table' AND name IN ('sqlite_sequence', 'sqlite_stat1', 'sqlite_stat2', "
        "'sqlite_stat3', 'sqlite_stat4'))")


def _tokens(sql: str | None) -> tuple[str, ...]:
    """`sql` as SQLite reads it: literals exactly as written; names and keywords in lower case,
    a quoted name unquoted (SQLite quotes a renamed table: `CREATE TABLE "records"`), one
    token however many spaces. A literal or a quoted name changed is a different object."""
    found = []
    for token in _TOKEN.findall(sql or ""):
        quote = token[0]
        if quote == "'":
            found.append(token)
        elif quote in "\"`[" and len(token) > 1:  # a name: "\0" tells it from punctuation
            inner = token[1:-1] if quote == "[" else token[1:-1].replace(quote * 2, quote)
            found.append("\0" + inner.lower())
        else:
            found.append(("\0" if quote.isalnum() or quote == "_" else "") + token.lower())
    return tuple(found)


def _layout(conn: sqlite3.Connection, kind: str, name: str) -> tuple[Any, ...]:
    """What SQLite made of a table's or index's SQL: its columns (name, type, not null,
    default, key), or its key columns (column, order, collation)."""
    if kind == "table":
        return tuple(tuple(r) for r in conn.execute("SELECT * FROM pragma_table_xinfo(?)",
                                                    (name,)))
    if kind == "index":
        return tuple(tuple(r) for r in conn.execute("SELECT * FROM pragma_index_xinfo(?)",
                                                    (name,)))
    return ()


def _objects(conn: sqlite3.Connection) -> _Objects:
    """Every object of the schema but SQLite's own (`_OWN`)."""
    return {(kind, name): (table, _tokens(sql), _layout(conn, kind, name))
            for kind, name, table, sql in conn.execute(
                f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE NOT ({_OWN})")}


@functools.lru_cache(maxsize=8)
def _expected(version: int) -> tuple[_Objects, dict[str, tuple[str, ...]]]:
    """The objects and each table's columns that migrations 1..`version` create."""
    from smpdevice.records.sqlite_schema import MIGRATIONS

    conn = sqlite3.connect(":memory:")
    try:
        for target, _, statements in MIGRATIONS:
            if target <= version:
                for statement in statements:
                    conn.execute(statement)
        objects = _objects(conn)
        return objects, {name: _columns(conn, name) for kind, name in objects if kind == "table"}
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    return tuple(row[1] for row in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,)))


def schema_problem(conn: sqlite3.Connection, version: int, *, changed: bool = True,
                   missing: bool = True) -> str | None:
    """What in the log's schema differs from the one smpdevice writes for `version` (its
    schema_version), in one line; None when it is exactly that schema. `changed`: objects
    added or redefined; `missing`: objects removed (verify names these after the records,
    which say more of a chain head dropped, say)."""
    want, want_columns = _expected(version)
    have = _objects(conn)
    found: list[str] = []
    if changed:
        for kind, name in sorted(have.keys() - want.keys()):
            table = have[kind, name][0]
            on = f" (on {table})" if kind in ("trigger", "index") and table != name else ""
            found.append(f"{kind} {name}{on} was added")
        found += [_redefined(conn, kind, name, want_columns.get(name, ()))
                  for kind, name in sorted(want.keys() & have.keys())
                  if have[kind, name] != want[kind, name]]
    if missing:
        found += [f"{kind} {name} is missing" for kind, name in sorted(want.keys() - have.keys())]
    if not found:
        return None
    return (f"the log's schema is not the one smpdevice writes (schema {version}): "
            f"{'; '.join(found)}: changed behind smpdevice (a trigger can drop or alter what "
            "a writer records); restore the log from a backup")


def _redefined(conn: sqlite3.Connection, kind: str, name: str, expected: Sequence[str]) -> str:
    """How an object of the schema differs: a table's columns added or removed, named."""
    if kind == "table":
        columns = _columns(conn, name)
        added = [c for c in columns if c not in expected]
        gone = [c for c in expected if c not in columns]
        parts = ([f"column{'s' * (len(added) > 1)} {', '.join(added)} added"] * bool(added)
                 + [f"column{'s' * (len(gone) > 1)} {', '.join(gone)} removed"] * bool(gone))
        if parts:
            return f"table {name} has {'; '.join(parts)}"
    return f"{kind} {name} was redefined"


def damaged_key(conn: sqlite3.Connection) -> str | None:
    """A row of `signing_keys` that holds no public key, named; None when each holds one (or
    the log has no such table: an older schema)."""
    from smpdevice.records.keys import recorded_key

    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'signing_keys'").fetchone():
        return None
    for label, public in conn.execute("SELECT fingerprint, public_key FROM signing_keys"):
        if recorded_key(public) is None:
            shown = repr(public if not isinstance(public, str) or len(public) <= 20
                         else public[:17] + "...")
            return (f"the log's signing_keys holds no key in its row {label!r} (public key "
                    f"{shown}, not 64 hex digits): added or damaged behind smpdevice (a writer "
                    "records only its own key); restore the log from a backup")
    return None


def signed_evidence(conn: sqlite3.Connection, anchors_files: Sequence[Path]) -> str | None:
    """What says the log was written signed, in words; None for a log never signed (written
    before heads were signed). THE rule, for a writer's open (`sqlite_recovery.check_head`)
    and verify (`once_signed`) alike: a signed head or a key left in it, a session opened by
    a writer that signs (every session_open since schema 3 names its key), or receipts in
    (or an unreadable end of) its anchors file: the one beside the log, and any other verify
    is given."""
    from smpdevice.records.sqlite_recovery import has_receipts

    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for table, what in (("signed_heads", "it keeps signed heads"),
                        ("signing_keys", "it records a signing key")):
        if table in tables and conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            return what
    opened = conn.execute(
        "SELECT session_id FROM records WHERE kind = 'session_open' AND CASE WHEN "
        "json_valid(body) THEN json_extract(body, '$.key_fingerprint') END IS NOT NULL "
        "ORDER BY seq LIMIT 1").fetchone() if "records" in tables else None
    if opened:
        return f"session {opened[0]} was opened by a writer that signs (its record names its key)"
    for file in anchors_files:
        if has_receipts(file):
            return f"its anchors file {file} holds receipts (or cannot be read)"
    return None


def once_signed(conn: sqlite3.Connection, anchors_files: Sequence[Path]) -> str | None:
    """Why a log without signatures (an older schema) is refused all the same: it was once
    signed, by the writer's own rule (`signed_evidence`). None: written before heads were
    signed (`verify --allow-unsigned` accepts it)."""
    named = signed_evidence(conn, anchors_files)
    if named is None:
        return None
    return (f"this log was written signed ({named}), yet it holds no signature: its signed "
            "heads and keys were removed (its schema cut back to an older one), so nothing "
            "vouches for its records; --allow-unsigned accepts only a log that was never "
            "signed. Restore it from a backup")


def refuse_altered_schema(conn: sqlite3.Connection, path: Any) -> None:
    """A writer's open: LogAltered (exit 3, nothing written) when the schema was altered."""
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    problem = schema_problem(conn, row[0] or 0) or damaged_key(conn)
    if problem is not None:
        raise LogAltered(f"the pass log {path} was changed without smpdevice: {problem}; "
                         f"nothing was written (`smp sessions verify --db {path}` names it)")


def checked(conn: sqlite3.Connection, sql: str, args: Sequence[Any], what: str,
            readback: str, expected: Sequence[Any]) -> None:
    """Run a writer's statement, which must change exactly one row (triggers' changes
    count too), after which `readback` (a query of that row) must return `expected`."""
    before = conn.total_changes
    conn.execute(sql, args)
    changed = conn.total_changes - before
    row = conn.execute(readback, (expected[0],)).fetchone()
    if changed != 1 or row is None or tuple(row) != tuple(expected):
        why = ("it was not stored" if row is None else "it reads back otherwise"
               if tuple(row) != tuple(expected) else f"{changed} rows changed, not 1")
        path = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
        raise LogAltered(
            f"the pass log {path} was changed while this writer held it: {what} was not "
            f"written as given ({why}: a trigger or a table altered behind it); nothing of "
            f"this transaction was kept and the needle must not run. Run `smp sessions verify "
            f"--db {path}` to see what, and restore the log from a backup")


_RECORD = ("SELECT seq, kind, session_id, pass_id, written_at, body, prev_hash, hash "
           "FROM records WHERE seq = ?")


def insert_record(conn: sqlite3.Connection, row: tuple[Any, ...]) -> None:
    """Append one record (seq, kind, session_id, pass_id, written_at, body, prev, hash),
    checked (`checked`)."""
    checked(conn, "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row,
            f"record {row[0]} ({row[1]})", _RECORD, row)
