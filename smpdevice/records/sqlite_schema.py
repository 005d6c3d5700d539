"""The SQLite pass log's schema, its migrations, the writer's lock and its error messages."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from pathlib import Path
from typing import IO, Any

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


class LockFileRefused(PassLogError):
    """`<file>.lock` is not a plain file of its own (a symlink, a hard link, a directory):
    refused before anything is written to it, so the lock can never overwrite a record."""

    exit_code = 2


class WriterLock:
    """What a writer holds: `<file>.lock` (its pid) and the database file itself (its inode),
    both flocked. Closing it lets both go."""

    def __init__(self, handle: IO[str], db_fd: int | None, inode: tuple[int, int] | None):
        self._handle, self._db_fd, self._inode = handle, db_fd, inode

    def __del__(self) -> None:  # a writer dropped unclosed lets go, as a file object does
        self.close()

    def close(self) -> None:
        if self._inode is not None:
            _HELD_INODES.discard(self._inode)
            self._inode = None
        if self._db_fd is not None:  # after the writer's connection closed (SqliteFile.close)
            os.close(self._db_fd)
            self._db_fd = None
        self._handle.close()


# The database files this process holds a writer lock on, by (device, inode): a second writer
# in this process (through a hard link) is refused before any descriptor of the file is opened,
# since closing one would drop the POSIX locks SQLite's own connections hold on it.
_HELD_INODES: set[tuple[int, int]] = set()


def take_writer_lock(path: Path) -> WriterLock | None:
    """Hold `<file>.lock` exclusively (released by the OS even on SIGKILL), or refuse naming
    the holder; then hold the database file itself (flock on its inode: SQLite's own locks are
    POSIX ones, independent of it), so a second writer reaching the same file by another name
    (a symlink, a hard link, a symlinked directory) is refused too (PassLogInUse), before it
    could take a live pass for a crashed one. None where there is no flock (not POSIX).

    The lock file sits beside the real file (the path resolved, as SQLite places its -wal and
    -shm). It is opened without following a symlink and must be a regular file with one
    link: its content (the holder's pid) is rewritten, and a link could point that at the log
    or its anchors."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: SQLite's own locking only
        return None
    real = real_path(path)
    lock_path = real.with_name(real.name + ".lock")
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(lock_path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refused(lock_path, path, "is a symbolic link") from None
        if exc.errno in (errno.EISDIR, errno.ENXIO):
            raise _refused(lock_path, path, "is not a regular file") from None
        raise
    info = os.fstat(fd)
    why = ("is not a regular file" if not stat.S_ISREG(info.st_mode) else
           f"is a hard link ({info.st_nlink} names share it)" if info.st_nlink > 1 else None)
    if why is not None:
        os.close(fd)
        raise _refused(lock_path, path, why)
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        os.fchmod(fd, 0o600)  # an older or copied-in lock file is tightened as the others
    handle = os.fdopen(fd, "r+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read(200).strip() or "another process"
        handle.close()
        raise _in_use(path, holder) from None
    except BaseException:
        handle.close()
        raise
    try:
        db_fd, inode = _hold_database(path, fcntl)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()  # only now: held, and known to be the lock file itself
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return WriterLock(handle, db_fd, inode)


def _hold_database(path: Path, fcntl: Any) -> tuple[int | None, tuple[int, int] | None]:
    """flock the database file's inode (created 0600 when new); PassLogInUse when another
    writer holds it through another name."""
    try:
        known = os.stat(path)
    except FileNotFoundError:
        known = None
    if known is not None and (known.st_dev, known.st_ino) in _HELD_INODES:
        raise _in_use(path, f"this process (pid {os.getpid()}), through another name")
    flags = os.O_RDONLY | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        info = os.fstat(fd)
        inode = (info.st_dev, info.st_ino)
        if not stat.S_ISREG(info.st_mode):  # refuse_foreign named it already; never locked
            os.close(fd)
            return None, None
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _in_use(path, "another process, through another name of the same file "
                            "(a link)") from None
    except BaseException:
        os.close(fd)
        raise
    _HELD_INODES.add(inode)
    return fd, inode


def _in_use(path: Path, holder: str) -> PassLogInUse:
    return PassLogInUse(
        f"the pass log {path} is in use by {holder} (a running controller?). "
        "Stop it first; to only read the log meanwhile, open it read-only "
        "(the `smp sessions` commands do)")


def real_path(path: Path) -> Path:
    """`path` with its symlinks resolved (where SQLite puts the log's -wal and -shm); as it
    is when it cannot be resolved (a loop: SQLite refuses it)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


class AnchorsFileRefused(PassLogError):
    """The anchors file beside the log is a link (a writer never appends through one: it
    could point the receipts at any file), or another log's (a new log of its stem). Exit 2."""

    exit_code = 2


def anchors_beside(path: Path, writer: bool) -> Path:
    """The log's anchors file: beside the real file, whatever name (a symlink) the log is
    opened by. A station from before that kept it beside the link it opens the log by: a
    reader reads it there until a writer moves it beside the real file (once, renamed whole);
    a new log never takes one from beside its link (another log's there: review 15 B2)."""
    from smpdevice.records.signing import anchors_path

    real, given = anchors_path(real_path(path)), anchors_path(path)
    if (given == real or real.exists() or given.is_symlink() or not given.is_file()
            or _new_log(real_path(path))):
        return real
    if not writer:
        return given
    try:
        os.rename(given, real)
    except OSError:  # another file system (kept where it is), or a racing writer moved it
        return real if real.exists() else given
    return real


def refuse_anchors(anchors: Path, path: Path) -> None:
    """What a writer checks of its anchors file before anything is written: no link
    (`refuse_linked_anchors`); and for a log it creates, no other log using that file
    (`refuse_shared_anchors`) and no receipts of a log that is gone (`refuse_new_log`)."""
    refuse_linked_anchors(anchors, path)
    refuse_shared_anchors(anchors, path)
    refuse_new_log(anchors, path)


def _new_log(path: Path) -> bool:
    """Nothing at `path`, or an empty file with no WAL beside it: a log a writer creates."""
    if not os.path.lexists(path):
        return True
    wal = path.with_name(path.name + "-wal")
    try:
        return (path.is_file() and path.stat().st_size == 0
                and (not wal.exists() or wal.stat().st_size == 0))
    except OSError:
        return False


def refuse_shared_anchors(anchors: Path, path: Path) -> None:
    """Refuse (exit 2) a new log whose anchors file another pass log uses: it is named by the
    stem, so `passlog.sqlite`, `passlog.db` and `passlog` in one directory would share one,
    and each log's receipts would fail the other's verify, or make the new one "missing"
    (review 15 B2). A link there to a log elsewhere counts if it still keeps its file there."""
    real = real_path(path)  # where SQLite creates the log (a --db link's target)
    other = log_sharing(anchors, real) if _new_log(real) else None
    if other is not None:
        raise AnchorsFileRefused(
            f"the pass log {path} would share its anchors file {anchors} with the pass log "
            f"{other} (named by the part of the name before its last dot): give this log "
            f"another name, e.g. {real.stem}2{real.suffix}; nothing was written")


def log_sharing(anchors: Path, real: Path) -> Path | None:
    """Another pass log whose anchors file is `anchors` (the new log's, at `real`), or None."""
    stem = anchors.name.removesuffix(".anchors.jsonl")
    try:
        names = sorted(os.listdir(anchors.parent))
    except OSError:
        return None
    for name in names:
        other = anchors.parent / name
        if Path(name).stem != stem or real_path(other) == real:
            continue
        if anchors_beside(other, writer=False) == anchors and _holds_log(other):
            return other
    return None


def _holds_log(path: Path) -> bool:
    """`path` leads to a pass log: a regular file with SQLite's header (or one being made, a
    WAL beside it). Another program's database (no `schema_version` table) is none; a file
    that cannot be looked into is taken for a log (only a new log is refused for it)."""
    from smpdevice.paths import SQLITE_HEADER
    from smpdevice.records.readonly import schema_names

    real = real_path(path)
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):  # a pipe, a device: never opened
            return False
        with open(real, "rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:  # a WAL or -shm, a text
                wal = real.with_name(real.name + "-wal")
                return wal.is_file() and wal.stat().st_size > 0
        names = schema_names(real)
    except OSError:
        return False
    except sqlite3.Error:
        return True
    return not names or "schema_version" in names


def refuse_new_log(anchors: Path, path: Path) -> None:
    """Refuse (PassLogError, exit 3) to create a log where there is none (nothing at `path`,
    or an empty file with no WAL beside it) while its anchors file holds receipts (or cannot
    be read): the log they vouch for was deleted or moved, and every reader says "missing:
    restore it". A new log there would append its receipts to that file, and the log restored
    as told would then fail verify (review 15)."""
    from smpdevice.errors import SmpError
    from smpdevice.records.signing import read_anchors

    if not _new_log(real_path(path)) or not os.path.lexists(anchors):
        return  # a log (or something else, named when it is opened)
    try:
        count = len(read_anchors(anchors))
    except SmpError as exc:
        held = f"cannot be read ({str(exc).rstrip('.')})"
    else:
        if not count:  # no session was ever anchored: a new log is fine
            return
        held = f"holds {count} receipt{'' if count == 1 else 's'} of its sessions"
    raise PassLogError(
        f"the pass log {path} is {'empty' if os.path.lexists(path) else 'missing'}, though "
        f"its anchors file {anchors} {held}: the log was deleted or moved: restore it from a "
        "backup (or put it back), or record in another data directory meanwhile; nothing was "
        "written")


def refuse_linked_anchors(anchors: Path, path: Path) -> None:
    """Refuse a writer whose anchors file is a symbolic link or a hard link (a second name of
    another file: the receipts would go into it), before anything is written."""
    with contextlib.suppress(OSError):
        info = anchors.lstat()
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            raise AnchorsFileRefused(
                f"the anchors file {anchors} of the pass log {path} is a hard link (another "
                "name of the same file): receipts are never appended into another file. Put "
                "a copy of its own there (`cp FILE FILE.new && mv FILE.new FILE`), then "
                "retry; nothing was written")
    if not anchors.is_symlink():
        return
    try:
        target = " (to {})".format(os.readlink(anchors).replace("\n", "\\n"))
    except OSError:
        target = ""
    raise AnchorsFileRefused(
        f"the anchors file {anchors} of the pass log {path} is a symbolic link{target}: "
        "receipts are never appended through a link. Put the file itself there (copy what "
        "it points to over the link, e.g. `cp --remove-destination`), then retry; nothing "
        "was written")


def _refused(lock_path: Path, path: Path, why: str) -> LockFileRefused:
    return LockFileRefused(
        f"the lock file {lock_path} {why}: remove it (the next writer makes its own) and "
        f"retry; nothing was written. If it pointed at a file, that file was left as it is; "
        f"check that {path} is the pass log meant")


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
