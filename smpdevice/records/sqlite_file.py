"""One SQLite file of records: its connection, its schema, its transactions and its errors.

A writer opens the file in WAL mode with `synchronous=FULL` and holds `<file>.lock`; a reader
opens it read-only (`smpdevice.records.readonly`, also on read-only media) and never writes.
The schema is created or migrated in ONE transaction, so a reader sees no tables or all of them;
a reader that finds none yet (a log being created) reads an empty in-memory copy of the schema.
Every storage failure becomes a `PassLogError` that says what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from smpdevice.records import readonly as readonly_db  # BUSY_WAIT_S, read at each open
from smpdevice.records.files import (
    PRIVATE_DIR,
    private_file,
    require_regular_file,
    tighten_folder,
    tighten_siblings,
)
from smpdevice.records.model import PassLogError, iso
from smpdevice.records.readonly import ReadOnlyConnection, connect_readonly, schema_names
from smpdevice.records.sqlite_checkpoint import SAFETY_NET_PAGES, WalCheckpointer
from smpdevice.records.sqlite_schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    storage_error,
    take_writer_lock,
)

# SQLite's primary result codes for a file that is no database or a damaged one.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
# ... and for one another connection holds locked
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


class NotAPassLog(PassLogError):
    """An existing SQLite file holds another kind of database (the calibrations given as
    --db): refused as it is, before it is locked, re-moded or opened to write (exit 2)."""

    exit_code = 2


def refuse_foreign(path: Path) -> None:
    """Look at an existing, non-empty file read-only, creating nothing beside it, and refuse
    it as it is when it is not a pass log: no lock file made, its mode left alone, nothing
    written (README: a wrong --db is refused as it is). Every open calls it first; a command
    may call it before it touches anything else. A file that cannot be looked at this way is
    refused as it is too (a busy one: another program is writing it; try again): a file whose
    kind is unknown is never locked, re-moded or written to."""
    if not require_regular_file(path) or path.stat().st_size == 0:  # a new log
        return
    for attempt in (1, 2):  # twice: a writer's checkpoint may tear the first look
        try:
            names = schema_names(path)
            break
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
                raise _unlooked(path, exc) from exc  # waited BUSY_WAIT_S already: no retry
            if attempt == 2:
                raise PassLogError(f"{storage_error(path, 'open', exc)} Nothing was "
                                   "changed.") from exc
    if names is None:
        raise PassLogError(f"cannot open the pass log {path}: it is no SQLite database: the "
                           "file is not a pass log or is damaged: restore it from a backup, or "
                           "give the path of a pass log; nothing was changed")
    if names and "schema_version" not in names:
        raise _foreign(path, unchanged=True)


def _unlooked(path: Path, exc: sqlite3.Error) -> PassLogError:
    """A file that could not be read to see what it holds, refused as it was."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return PassLogError(
            f"cannot open the pass log {path} ({exc}): another program is using it (it holds "
            "the file locked); nothing was changed. Try again once it is done, or give the "
            "path of another pass log")
    return PassLogError(f"cannot look at {path} to see whether it is a pass log ({exc}); "
                        "nothing was changed. Check the file and its permissions, or give "
                        "the path of a pass log")


def _foreign(path: Path, *, unchanged: bool) -> NotAPassLog:
    return NotAPassLog(f"{path} is an SQLite file but not a pass log; give the path of a pass "
                       "log, or a new file" + ("; nothing was changed" if unchanged else ""))


def path_argument(path: object) -> None:
    """A log's `path` as its constructor takes it: a str or os.PathLike without a NUL
    (InvalidArgument, as `PassLog.open` says; never a bare ValueError: review 18e)."""
    from smpdevice import checks
    from smpdevice.config import user_path  # its NUL check; lazily: config reads no records

    checks.instance("path", path, (str, os.PathLike), "a file path (str or os.PathLike)")
    raw = os.fspath(path)  # type: ignore[call-overload]
    if not isinstance(raw, str) or "\0" in raw:  # bytes, or a NUL: refused by name
        user_path(path)  # type: ignore[arg-type]


class SqliteFile:
    """A writer by default; `readonly=True` to only read. Calls are serialised by a lock."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False):
        """`path` already checked (`path_argument`) by the one subclass, `PassLog`."""
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._lock_file: Any = None
        self._conn: Any = None  # sqlite3.Connection; Any so tests can stand in for the disk
        self._reader: ReadOnlyConnection | None = None
        self._depth = 0
        self._checkpointer: WalCheckpointer | None = None
        try:
            self._connect()
            if readonly:
                version = self._version()
                self._check_version(version)
                if version == 0:
                    self._read_as_empty()
            else:
                self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        with self._lock:
            if self._checkpointer is not None:  # before the writer: the last one out
                self._checkpointer.close()     # checkpoints and removes the WAL
                self._checkpointer = None
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


    def _connect(self) -> None:
        try:
            if self.readonly:
                if not require_regular_file(self.path):  # a directory: NotAFileError
                    raise PassLogError(f"no pass log at {self.path}: it is created by the "
                                       "first session (or give the right --db)")
                refuse_foreign(self.path)
                self._reader = connect_readonly(self.path)
                self._conn = self._reader.conn
            else:
                # A new directory is private; an existing one is the user's choice (--db).
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
                # A directory given as --db, or what the file holds: before the lock, the chmod.
                refuse_foreign(self.path)
                from smpdevice.records.logcopies import refuse_copy_beside

                refuse_copy_beside(self.path)  # one log in two files: never written in both
                self._lock_file = take_writer_lock(self.path)
                private_file(self.path)  # 0600 before SQLite makes it (and its -wal, -shm)
                self._conn = sqlite3.connect(self.path, isolation_level=None,
                                             check_same_thread=False,
                                             timeout=readonly_db.BUSY_WAIT_S)
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise PassLogError(f"cannot put the pass log {self.path} in WAL mode "
                                       f"(got {mode}); put the data directory on a local disk")
                tighten_siblings(self.path)
                from smpdevice.records.frames import recordings_dir

                tighten_folder(recordings_dir(self.path))  # an older version's recordings
                self._conn.execute("PRAGMA synchronous=FULL")
                # Checkpoints run on their own thread (WalCheckpointer), never inside a
                # commit; SQLite's own stays only as a safety net, far above that thread's.
                self._conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
                self._checkpointer = WalCheckpointer(self.path)
        except OSError as exc:
            raise PassLogError(f"cannot open the pass log {self.path}: {exc.strerror or exc}; "
                               "check the path and its permissions, or set SMP_DATA_DIR") from exc
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc

    def _checkpoint_wal(self) -> None:
        """Move the WAL into the main file now (on opening). A failure loses nothing."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _committed(self) -> None:
        """After every durable commit (subclasses may extend)."""
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def _rolled_back(self) -> None:
        """After a transaction failed: what a subclass cached from it is unknown now."""

    def _has_table(self, name: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone() is not None

    def _version(self) -> int:
        try:
            if not self._has_table("schema_version"):
                if self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise _foreign(self.path, unchanged=self.readonly)
                return 0
            return self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        except sqlite3.DatabaseError as exc:
            raise self._error("read", exc) from exc

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise PassLogError(
                f"the pass log {self.path} was written by a newer smpdevice (log schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade smpdevice to read "
                "it; do not let an older version write to it")

    def _migrate(self) -> None:
        """Bring the schema up to date in ONE transaction: a reader sees no tables or all."""
        with self._tx():
            # Read the version inside the write transaction, so two writers never both migrate.
            version = self._version()
            self._check_version(version)
            self._apply_migrations(version)
            self._check_before_writing()  # a refusal rolls the migration back with it

    def _check_before_writing(self) -> None:
        """A writer's checks of what it opened, inside the migration's transaction."""

    def _apply_migrations(self, version: int) -> None:
        for target, description, statements in MIGRATIONS:
            if target <= version:
                continue
            for statement in statements:
                self._conn.execute(statement)
            self._conn.execute(
                "INSERT INTO schema_version (version, applied_at, description) "
                "VALUES (?, ?, ?)", (target, iso(datetime.now(UTC)), description))

    def _read_as_empty(self) -> None:
        """A log whose writer has not yet committed its schema (being created) reads as empty:
        read from an empty in-memory log instead of failing on missing tables."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._apply_migrations(0)
        # The schema draws a random log id; this log has none yet (its writer draws it), and a
        # made-up one would be synced and then reported missing forever (review 8b, R06).
        self._conn.execute("DELETE FROM meta WHERE name = 'log_id'")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            if self._conn is None:
                raise PassLogError(f"the pass log {self.path} is closed")
            try:
                yield
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One durable transaction; nested uses join the outer one (for bulk writes)."""
        with self._lock:
            if self._conn is None:
                raise PassLogError(f"the pass log {self.path} is closed")
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._rolled_back()
                with contextlib.suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error("write", exc) from exc
                raise
            finally:
                self._depth = 0
            self._committed()

    def _error(self, action: str, exc: sqlite3.Error) -> PassLogError:
        return storage_error(self.path, action, exc)
