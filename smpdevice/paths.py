"""Where smpdevice keeps its data: the pass log, calibrations and logs.

Order: an explicit path (`--db PATH`), else `$SMP_DATA_DIR`, else `data_dir` in the station
config file (smpdevice.config), else a per-user default (`$XDG_DATA_HOME/smpdevice`, normally
`~/.local/share/smpdevice`). Nothing is written outside the data directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from smpdevice.config import HomeDirError, home_dir, setting, user_path
from smpdevice.errors import SmpError
from smpdevice.records.files import private_dir

PASS_LOG_NAME = "passlog.sqlite"
PEN_LOG_GLOB = "passlog-*.sqlite"  # every pen's own log (`pen_log_name`)
# calibration.store's name for the station's calibration database, kept here (that module loads
# pydantic: start-up) for the one finder of pass logs (records.logset), which never takes it.
CALIBRATIONS_NAME = "calibrations.sqlite"


def data_dir(create: bool = True) -> Path:
    """The data directory. A writer (`create`) makes it on first use and keeps it 0700 (a
    directory it cannot re-mode, read-only media, is left as it is: the store's own open then
    says why it cannot write); a reader (`create=False`) only names it: readers never write,
    so a backup on a read-only mount, or a drive not mounted, is read or reported as it is."""
    chosen = setting("data_dir").value
    if chosen:
        path = user_path(chosen)
    else:
        base = os.environ.get("XDG_DATA_HOME") or home_dir() / ".local" / "share"
        path = Path(base) / "smpdevice"
    if create:
        try:
            private_dir(path)  # 0700: it holds health data (records F)
        except OSError as exc:
            raise SmpError(
                f"cannot create the data directory {path}: {exc.strerror}. "
                "Set SMP_DATA_DIR to a writable directory."
            ) from exc
    return path


def db_path(explicit: str | os.PathLike | None = None, *, create: bool = False) -> Path:
    """The pass-log database: `explicit` if given (refused, untouched, when it is a file but no
    database: `require_database`), else `<data dir>/passlog.sqlite`. The directory is only
    named (readers never write); a writer passes `create=True` to make it 0700 (the log's own
    open makes a missing one 0700 too)."""
    if not isinstance(explicit, (str, os.PathLike, type(None))):
        from smpdevice.checks import InvalidArgument

        raise InvalidArgument(f"the pass log's path must be a str or os.PathLike (or None: "
                              f"the default); it is a {type(explicit).__name__}")
    if explicit:
        return require_database(user_path(explicit), "a pass log", "--db")
    return data_dir(create) / PASS_LOG_NAME


def pen_log_path(pen_serial: str) -> Path:
    """The pass log of one pen, used while another chair's run holds the station's log:
    `<data dir>/passlog-<serial>.sqlite` (the serial made safe for a file name)."""
    return data_dir() / pen_log_name(pen_serial)


def pen_log_name(pen_serial: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in pen_serial)[:64] or "pen"
    return PEN_LOG_GLOB.replace("*", safe)


def pass_log_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """The logs `smp sessions` and `smp run --resume` read as one: `explicit` alone, else the
    station's log and every other pass log of the data directory, whatever its name
    (`logset.logs_beside`; the station's log first, even if absent, so a missing log is
    reported as before)."""
    if explicit:
        return [user_path(explicit)]
    from smpdevice.records.logset import logs_beside  # the rule the service reads by too

    return logs_beside(db_path())  # readers create and re-mode nothing


# ------------------------------------------------------------------ what no output may overwrite
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file
SQLITE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


class RecordOverwriteError(SmpError):
    """An output path (`smp sessions export -o`, `smp protocol c-codec --out`) is, or leads
    to, one of the station's records or an SQLite database: refused before anything opens it."""


class NotADatabaseError(SmpError):
    """A database path (`--db`, `--calibrations`) names an existing file that is no SQLite
    database (a profile typed in the wrong place): refused before it is locked or re-moded."""


def _record_kind(name: str) -> str | None:
    """What the file `name` in the data directory is, if it is one of its records."""
    from fnmatch import fnmatchcase

    from smpdevice.calibration.store import CALIBRATIONS_NAME  # the store's own name
    from smpdevice.logs import DETAIL_LOG_NAME
    from smpdevice.service.auth import SOCKET_NAME, TOKEN_FILE_NAME

    stores = {PASS_LOG_NAME: "station's pass log", PEN_LOG_GLOB: "pen's pass log",
              CALIBRATIONS_NAME: "calibration database"}
    for pattern, kind in stores.items():
        if fnmatchcase(name, pattern):
            return kind
        if any(fnmatchcase(name, pattern + suffix) for suffix in SQLITE_SIDE_SUFFIXES):
            return f"side file of the {kind}"
    if name.endswith(".anchors.jsonl"):
        return "anchors file (the pass log's signed receipts)"
    if name == TOKEN_FILE_NAME:
        return "service's access tokens"
    if name == SOCKET_NAME:
        return "service's socket"
    if name == DETAIL_LOG_NAME or fnmatchcase(name, DETAIL_LOG_NAME + ".*"):
        return "detail log"
    return None


def _protected(read: Iterable[Path]) -> dict[Path, str]:
    """Every record path (real, absolute) with what it is: the data directory's records (each
    of its pass logs by content, `logset.pass_logs_in`, with its side files), the frame
    recordings, the installation key, the station config, and the logs a command reads
    (with their side files, anchors and recordings) wherever they are."""
    from smpdevice.config import config_path
    from smpdevice.records.frames import RECORDINGS_DIR
    from smpdevice.records.keys import KEY_FILE_NAME, key_dir
    from smpdevice.records.signing import anchors_path

    found: dict[Path, str] = {}
    directory = data_dir(create=False)
    with contextlib.suppress(OSError):
        for entry in directory.iterdir():
            kind = _record_kind(entry.name)
            if kind is not None:
                found[_real(entry)] = kind
    with contextlib.suppress(OSError):  # each pass log there whatever its name (chair2.sqlite)
        from smpdevice.records.logset import pass_logs_in

        for log in pass_logs_in(directory):
            for name, kind in ((log.name, "pass log of the data directory"),
                               *((log.name + s, "side file of a pass log of the data "
                                  "directory") for s in SQLITE_SIDE_SUFFIXES)):
                found.setdefault(_real(log.with_name(name)), kind)
    with contextlib.suppress(HomeDirError):  # no home: no key or config under it either
        found[_real(key_dir() / KEY_FILE_NAME)] = "installation key"
    with contextlib.suppress(HomeDirError):
        found[_real(config_path())] = "station config"
    for log in read:
        for name, kind in ((log.name, "pass log this command reads"),
                           *((log.name + s, "side file of the pass log it reads") for s in
                             SQLITE_SIDE_SUFFIXES),
                           (anchors_path(log).name, "anchors file of the log it reads")):
            found.setdefault(_real(log.with_name(name)), kind)
    for folder in {directory, *(log.parent for log in read)}:
        with contextlib.suppress(OSError):
            for entry in (folder / RECORDINGS_DIR).iterdir():
                found.setdefault(_real(entry), "frame recording")
    return found


def _real(path: Path) -> Path:
    return Path(os.path.realpath(user_path(path)))


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def _head(path: Path) -> bytes | None:
    """The first bytes of the regular file `path`; None when it is no regular file or cannot
    be read (whoever opens it then says why)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER))
    except OSError:
        return None


def is_sqlite_file(path: Path) -> bool:
    """Whether `path` is a regular file that begins with the SQLite header."""
    return _head(path) == SQLITE_HEADER


def refuse_record_output(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                         option: str, *, read: Iterable[Path] = ()) -> None:
    """Refuse (RecordOverwriteError, exit 2) an output path (or any of several) that is, or
    resolves to (a symlink, a hard link, `./`, a relative path), one of the station's records
    (`_protected`, listed once for all of them) or any existing SQLite database. Every command
    that writes a file the user names calls it BEFORE opening the file, so a mix-up of `--db`
    and `-o` never truncates a pass log."""
    records = _protected(read)
    for path in [paths] if isinstance(paths, str | os.PathLike) else paths:
        _refuse_one(path, option, records)


def _refuse_one(path: str | os.PathLike[str], option: str, records: dict[Path, str]) -> None:
    from smpdevice.records.frames import RECORDINGS_DIR

    given = user_path(path)
    real = _real(given)
    kind, where = records.get(real), real
    directory = _real(data_dir(create=False))
    if kind is None and real.parent == directory:
        kind = _record_kind(real.name)  # a record not there yet (a new pen's log)
    if kind is None and real.parent == directory / RECORDINGS_DIR:
        kind, where = "in the frame recordings folder", real.parent
    if kind is None and (identity := _identity(given)) is not None:
        for record, record_kind in records.items():  # a hard link to a record
            if _identity(record) == identity:
                kind, where = record_kind, record
                break
    if kind is not None:
        why = f"it is {kind if kind.startswith('in ') else 'the ' + kind} {where}"
    elif is_sqlite_file(given):
        why = "it is an SQLite database (a record store, perhaps a pass log or a backup)"
    else:
        return
    raise RecordOverwriteError(f"{option} {path}: {why}; an output never writes over a "
                               "record. Give a new file name; nothing was written")


def require_database(path: Path, what: str, option: str | None = None) -> Path:
    """`path` unless it is an existing, non-empty regular file that is no SQLite database
    (a profile or notes typed as --db): then NotADatabaseError, before the file is locked,
    re-moded or opened. An empty file or a missing one is a new database."""
    head = _head(path)  # None: missing (then created), not a file or unreadable (the
    if head and head != SQLITE_HEADER:  # opener says why); b"": an empty file, a new database
        raise NotADatabaseError(
            f"{option + ' ' if option else ''}{path} is not {what} (it is no SQLite "
            f"database); give the path of {what}, or a new file to create one; nothing was "
            "changed")
    return path
