"""The SQLite pass log's schema, its migrations, the writer's lock and its error messages."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import IO

from smpdevice.records.files import private_file
from smpdevice.records.model import PassLogError

SCHEMA_VERSION = 4
_V1 = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, description TEXT NOT NULL)""",
    """CREATE TABLE records (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL
            CHECK (kind IN ('session_open', 'pass_begin', 'pass_end', 'session_close')),
        session_id TEXT NOT NULL,
        pass_id TEXT,
        written_at TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX records_session_open ON records(session_id) WHERE kind='session_open'",
    "CREATE UNIQUE INDEX records_session_close ON records(session_id) WHERE kind='session_close'",
    "CREATE UNIQUE INDEX records_pass_begin ON records(pass_id) WHERE kind='pass_begin'",
    "CREATE UNIQUE INDEX records_pass_end ON records(pass_id) WHERE kind='pass_end'",
    "CREATE INDEX records_session ON records(session_id, seq)",
)
_V2 = (
    "CREATE TABLE progress (pass_id TEXT PRIMARY KEY, written_at TEXT NOT NULL, "
    "figures TEXT NOT NULL)",
    "CREATE TABLE chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, "
    "hash TEXT NOT NULL)",
    # Files from v1 start their head at the last record they hold.
    "INSERT INTO chain_head (id, seq, hash) "
    "SELECT 1, seq, hash FROM records ORDER BY seq DESC LIMIT 1",
)
_V3 = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Binds every signed head to this log: a head cannot be moved to another log.
    "INSERT INTO meta (name, value) VALUES ('log_id', lower(hex(randomblob(16))))",
    "ALTER TABLE chain_head ADD COLUMN key_fingerprint TEXT",
    "ALTER TABLE chain_head ADD COLUMN signature TEXT",
    "CREATE TABLE signing_keys (fingerprint TEXT PRIMARY KEY, public_key TEXT NOT NULL, "
    "first_used TEXT NOT NULL)",
    "CREATE TABLE signed_heads (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, "
    "reason TEXT NOT NULL CHECK (reason IN ('session_close', 'interval', 'adopted')), "
    "key_fingerprint TEXT NOT NULL, signature TEXT NOT NULL)",
)
# A `session_resume` record (smp run --resume): SQLite cannot widen a CHECK in place, so the
# records table is rebuilt with the same rows, hashes and indexes (one transaction).
_V4 = (
    """CREATE TABLE records_v4 (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('session_open', 'pass_begin', 'pass_end',
                                           'session_close', 'session_resume')),
        session_id TEXT NOT NULL,
        pass_id TEXT,
        written_at TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    "INSERT INTO records_v4 SELECT seq, kind, session_id, pass_id, written_at, body, "
    "prev_hash, hash FROM records ORDER BY seq",
    "DROP TABLE records",
    "ALTER TABLE records_v4 RENAME TO records",
    *_V1[2:],  # the same indexes as before
)
# (version, what it adds, SQL statements). Append only; never edit a released step.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "hash-chained records of sessions and passes", _V1),
    (2, "checkpoints of passes in progress; chain head (detects truncation)", _V2),
    (3, "Ed25519-signed chain heads, the log's id, its signing keys", _V3),
    (4, "session_resume records (a session resumed after an interruption)", _V4),
)



class PassLogInUse(PassLogError):
    """Another process holds the log's writer lock (another chair's `smp run`, say)."""


def take_writer_lock(path: Path) -> IO[str] | None:
    """Hold `<file>.lock` exclusively (released by the OS even on SIGKILL), or refuse naming
    the holder. Returns the open handle to keep; None where there is no flock (not POSIX)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: SQLite's own locking only
        return None
    lock_path = path.with_name(path.name + ".lock")
    private_file(lock_path)
    handle = open(lock_path, "r+")  # noqa: SIM115 - held open for the log's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise PassLogInUse(
            f"the pass log {path} is in use by {holder} (a running controller?). "
            "Stop it first; to only read the log meanwhile, open it read-only "
            "(the `smp sessions` commands do)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def storage_error(path: Path, action: str, exc: sqlite3.Error) -> PassLogError:
    """A PassLogError that says what failed and what to do."""
    text = str(exc)
    low = text.lower()
    if "full" in low:
        hint = "the disk is full: free space on it"
    elif "readonly" in low or "read-only" in low:
        hint = "the file or its directory is read-only: check permissions and the mount"
    elif "locked" in low or "busy" in low:
        hint = "another process holds the file: stop it and retry"
    elif "not a database" in low or "malformed" in low:
        hint = "the file is not a pass log or is damaged: restore it from a backup"
    else:
        hint = "check the disk and the file"
    stop = " The needle must not run until the log can record." if action == "write" else ""
    return PassLogError(f"cannot {action} the pass log {path} ({text}): {hint}.{stop}")
