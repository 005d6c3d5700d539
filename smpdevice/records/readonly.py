"""Open an SQLite file (a pass log, the calibrations) for reading only, also on read-only media.

A WAL-mode file opened `?mode=ro` still needs its `-shm` index: SQLite creates it beside the file
when it is missing. On a read-only mount, a write-protected backup directory or a directory of
another user it cannot, and the open fails with "unable to open database file". Then:

- no WAL content beside the file (the writer closed cleanly, the usual backup): open it
  `?immutable=1`: nothing is locked or created, and every committed record is in the main file;
- a non-empty `-wal` beside it (a copy taken while a writer ran, or after a crash): committed
  records may live only in the WAL, which `immutable` would silently ignore. Copy the file and
  its WAL to a private temporary directory and read the copy, where SQLite replays the WAL.

The choice is driven by SQLite's own error, not by `os.access` (which root always passes).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import stat
import tempfile
from pathlib import Path

# Primary result codes of an open that needed to create or write the -shm/-wal files.
_SQLITE_READONLY = 8
_SQLITE_CANTOPEN = 14

# How long any connection to a pass log or the calibrations waits for a lock another
# connection holds before SQLite says "database is locked" (README: "SQLite's 5 s wait").
# Every open reads it at call time: `sqlite3.connect(..., timeout=readonly.BUSY_WAIT_S)`.
BUSY_WAIT_S = 5.0


class ReadOnlyConnection:
    """A read-only connection and whatever must be removed when it closes."""

    def __init__(self, conn: sqlite3.Connection, how: str,
                 scratch: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self.conn = conn
        self.how = how  # "ro", "immutable" or "copy": how the file could be opened
        self._scratch = scratch

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def _connect(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_WAIT_S)
    try:
        # The -shm problem shows only at the first read.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _needs_fallback(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_READONLY, _SQLITE_CANTOPEN)
    text = str(exc).lower()
    return "unable to open" in text or "readonly" in text


def connect_readonly(path: Path) -> ReadOnlyConnection:
    """Open `path` (which must exist) for reading; raises sqlite3.Error if it cannot be read."""
    uri = path.resolve().as_uri()
    try:
        return ReadOnlyConnection(_connect(uri + "?mode=ro"), "ro")
    except sqlite3.Error as exc:
        if not _needs_fallback(exc):
            raise
    wal = path.with_name(path.name + "-wal")
    try:
        wal_bytes = wal.stat().st_size
    except OSError:
        wal_bytes = 0
    if not wal_bytes:
        return ReadOnlyConnection(_connect(uri + "?immutable=1"), "immutable")
    scratch = tempfile.TemporaryDirectory(prefix="smp-readonly-")
    try:
        copy = Path(scratch.name) / path.name
        shutil.copyfile(path, copy)
        shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        return ReadOnlyConnection(_connect(copy.as_uri() + "?mode=ro"), "copy", scratch)
    except BaseException:
        scratch.cleanup()
        raise


def schema_names(path: Path) -> list[str] | None:
    """The names in the schema (tables, indexes, views) of the existing, non-empty SQLite file
    at `path`, looked at without locking, creating or changing anything beside it, so that
    someone else's database given by mistake is left as it was; None when it is no SQLite
    database at all. With no `-wal` or `-journal` beside it every committed row is in the main
    file, read `?immutable=1` (`?mode=ro` would leave a `-wal` and a `-shm` beside a WAL-mode
    file); else it is read as every reader reads it. sqlite3.Error when it cannot be read;
    OSError for no regular file (a FIFO, a directory, a device)."""
    from smpdevice.paths import SQLITE_HEADER

    # Never blocks: a FIFO opened to read waits for a writer forever (review 19).
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a file (a directory, device, pipe or socket)",
                          str(path))
        if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            return None
    sides = [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal")]
    if any(side.exists() for side in sides):
        reader = connect_readonly(path)
    else:
        reader = ReadOnlyConnection(_connect(path.resolve().as_uri() + "?immutable=1"),
                                    "immutable")
    try:
        return [row[0] for row in reader.conn.execute("SELECT name FROM sqlite_master")]
    finally:
        reader.close()
