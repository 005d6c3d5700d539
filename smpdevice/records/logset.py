"""Every pass log of a data directory read as one: the station's `passlog.sqlite`, each pen's
own `passlog-<serial>.sqlite` (written while another chair's run held the station's log), and
any log a run was given there by `--db` under a name of its own (`chair2.sqlite`): every file
of the directory that is a pass log by its content (`pass_logs_in`, the one finder).

`smp sessions list|show|export|verify|sync` and the service's `sessions.*` methods (and so the
console) read through this module, so a session is found, listed and exported the same way by
all of them, whichever log holds it. Read-only: never competes with a running session.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from smpdevice.errors import SmpError
from smpdevice.records.logcopies import (  # noqa: F401 (the names readers know them by)
    CopiedLog,
    DivergedLog,
    copied,
    copies,
    copy_problems,
)


class UnknownSession(SmpError):
    """No session has this id (or prefix), or a prefix names several: the message says which
    and what to do."""


def logs_beside(station: Path) -> list[Path]:
    """The station's log (first, whether it exists or not), then every other pass log of its
    directory (`pass_logs_in`), whatever its name: the one rule of resume, `smp sessions`,
    `smp replay`, the service's `sessions.*` and a writer's open. No directory: the station's
    log alone (its open says what is missing)."""
    station = Path(station)
    try:
        found = pass_logs_in(station.parent)
    except OSError:
        found = []
    return [station, *(p for p in found if p.name != station.name)]


def pass_logs_in(directory: Path) -> list[Path]:
    """Every pass log of `directory`, by name: each `candidates` entry but those that surely
    are none (`surely_no_log`). A log that cannot be read (damaged, locked past the wait, a
    link leading nowhere, a folder named `*.sqlite`) is kept: its open names it with why.
    OSError when the directory cannot be listed."""
    return [p for p in candidates(directory) if not surely_no_log(p)]


def candidates(directory: Path) -> list[Path]:
    """The entries of `directory` that may be pass logs, by name: each named `*.sqlite`
    whatever it is (a folder, a link leading nowhere: named when opened), and each regular file
    (or link to one: a log kept on another drive) that begins with SQLite's header. One look
    at each entry: nothing opened that could block (a FIFO, a device, a socket), no side file
    (-wal, -shm, -journal, .lock), anchors file or text taken. OSError when the directory
    cannot be listed."""
    found = []
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.endswith(".sqlite") or _sqlite_head(entry):
                found.append(Path(entry.path))
    return found


def _sqlite_head(entry: os.DirEntry[str]) -> bool:
    from smpdevice.paths import SQLITE_HEADER

    try:
        if not entry.is_file():  # a link is followed to a regular file only
            return False
        with open(entry.path, "rb", opener=_nonblocking) as handle:
            return bool(handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER)
    except OSError:
        return False


def _nonblocking(path: str, flags: int) -> int:
    # Never blocks: swapped for a FIFO since it was listed, an open to read would wait forever.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


# The columns of a pass log's hash-chained `records` table, in every schema version
# (records/sqlite_schema.py): with `meta.log_id` (schema 3 on), the log's own marks.
LOG_COLUMNS = frozenset(("seq", "kind", "session_id", "pass_id", "written_at", "body",
                         "prev_hash", "hash"))


def surely_no_log(path: Path) -> bool:
    """True only for what surely is no pass log: the station's calibration database (by its
    name, even damaged), an SQLite file without the `schema_version` table every log has (as
    a log's open refuses it: NotAPassLog), or one with it but none of the log's own marks (a
    `records` table with the log's columns, a `meta` table naming the log's id: another
    program's migrations). A log, or a file that cannot be told (damaged, locked, no file):
    False, for its open to name it."""
    import sqlite3

    from smpdevice.paths import CALIBRATIONS_NAME
    from smpdevice.records.readonly import schema_names

    if path.name == CALIBRATIONS_NAME:
        return True
    try:
        names = schema_names(path)
        if not names:  # no SQLite file (damaged?), or one with nothing in it: its open says
            return False
        return "schema_version" not in names or not _marked(path, names)
    except (OSError, sqlite3.Error):  # cannot be told: named when opened
        return False


def _marked(path: Path, names: Sequence[str]) -> bool:
    """Whether the SQLite file at `path` (its schema `names` holding `schema_version`) bears
    one of the pass log's own marks."""
    import sqlite3

    from smpdevice.records.readonly import connect_readonly

    if "records" not in names and "meta" not in names:
        return False
    sides = [path.with_name(path.name + suffix) for suffix in ("-wal", "-journal")]
    if any(side.exists() for side in sides):
        reader = connect_readonly(path)
        conn, close = reader.conn, reader.close
    else:  # as schema_names reads it: nothing created beside another program's file
        conn = sqlite3.connect(path.resolve().as_uri() + "?immutable=1", uri=True)
        close = conn.close
    try:
        def columns(table: str) -> set[str]:
            return {row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)",
                                                   (table,))}

        if columns("records") >= LOG_COLUMNS:
            return True
        return columns("meta") >= {"name", "value"} and conn.execute(
            "SELECT 1 FROM meta WHERE name = 'log_id'").fetchone() is not None
    finally:
        close()


def deleted_beside(station: Path) -> list[Path]:
    """The logs of the station's directory that are gone while their anchors file, holding
    receipts, is left (`missing_log`): the station's (also under the default name) and every
    other log whose anchors file is there (`<name>.anchors.jsonl`: a pen's, `chair2`'s; named
    `<name>.sqlite`). `smp sessions verify` and the service's check them: their records are
    lost."""
    from smpdevice.paths import PASS_LOG_NAME

    station = Path(station)
    names = {station, station.with_name(PASS_LOG_NAME)}
    with contextlib.suppress(OSError):  # no directory: the station's log says so
        for entry in os.scandir(station.parent):
            if entry.name.endswith(_ANCHORS_SUFFIX) and entry.name != _ANCHORS_SUFFIX:
                names.add(station.with_name(entry.name[:-len(_ANCHORS_SUFFIX)] + ".sqlite"))
    return sorted((p for p in names if missing_log(p) is not None),
                  key=lambda p: (p != station, p.name))


_ANCHORS_SUFFIX = ".anchors.jsonl"


def anchors_path(log: Path) -> Path:
    from smpdevice.records.signing import anchors_path as beside

    return beside(log)


def _there(path: Path) -> bool:
    """Something is at `path`: a file, a directory, any link (also one that leads nowhere)."""
    return os.path.lexists(path)


def missing_log(path: Path) -> str | None:
    """Why the log at `path` is missing though it existed: nothing is there, but its anchors
    file is and holds receipts (or cannot be read): the log was deleted or moved. None when
    the log is there, or nothing says it ever was."""
    from smpdevice.records.signing import read_anchors
    from smpdevice.records.sqlite_schema import log_sharing, real_path

    anchors = anchors_path(path)
    if _there(path) or not _there(anchors):
        return None
    if log_sharing(anchors, real_path(path)) is not None:
        return None  # the receipts are another log's beside it (the same name before the dot)
    try:
        count = len(read_anchors(anchors))
    except SmpError as exc:
        held = f"cannot be read ({str(exc).rstrip('.')})"
    else:
        if not count:  # an empty file: no session was ever anchored
            return None
        held = f"holds {count} receipt{'' if count == 1 else 's'} of its sessions"
    return (f"the pass log {path} is missing, though its anchors file {anchors} {held}: "
            "the log was deleted or moved; restore it (from a backup) or put it back")


def unreachable(path: Path) -> str | None:
    """Why the entry at `path`, a symbolic link, leads to no file (a drive not mounted, a
    loop); None when it is no link or leads somewhere."""
    if not path.is_symlink():
        return None
    try:
        os.stat(path)
    except OSError as exc:
        todo = ("it leads back to itself: point it at the log, or remove it"
                if exc.errno == errno.ELOOP else "mount the drive it is on, or remove the link")
        return (f"the pass log {path} is a symbolic link to {os.readlink(path)}, which cannot "
                f"be reached ({exc.strerror or exc}): {todo}")
    return None


def existing(paths: Sequence[Path], *, keep_missing_station: bool = False) -> list[Path]:
    """The logs among `paths` (the station's first) that are there (anything of that name,
    also a link leading nowhere: it is named when opened): the one rule of `smp sessions` and
    the service. `keep_missing_station`: the station's log (or --db's) is kept, though absent,
    when it is the only one, so that its absence is reported."""
    return [p for p in paths if _there(p) or (keep_missing_station and len(paths) == 1)]


def require_present(path: Path) -> None:
    """PassLogError (exit 3) for a log of the data directory that was deleted (its anchors
    file left) or is a link leading nowhere, saying so; nothing for any other path."""
    from smpdevice.records.model import PassLogError

    why = missing_log(path) or unreachable(path)
    if why is not None:
        raise PassLogError(why)


def sessions_of(logs: Sequence[Any]) -> list[tuple[Path, Any]]:
    """(log path, session without passes) of every session of every log, in log order."""
    return [(Path(log.path), s) for log in logs for s in log.sessions()]


def matching(rows: Iterable[tuple[Path, Any]], session_id: str) -> list[tuple[Path, str]]:
    """(log path, full id) of every session among `rows` ((log path, session), as
    `sessions_of` reads them) whose id starts with `session_id`: what pick_session picks from.
    The one matcher of resume/close, `smp sessions` and the service."""
    return [(path, s.session_id) for path, s in rows if s.session_id.startswith(session_id)]


@contextlib.contextmanager
def open_all(paths: Sequence[Path], *,
             skipped: list[tuple[Path, SmpError]] | None = None) -> Iterator[list[Any]]:
    """The logs at `paths`, each open read-only. `skipped` (a list, for the logs of a data
    directory rather than one --db): a log that cannot be opened (damaged, or a stray file
    named like a pen's log) is left out and appended to it as (path, error), so it hides none
    of the others; when none of them opens, the first one's error is raised."""
    from smpdevice.passlog import PassLog

    with contextlib.ExitStack() as stack:
        if skipped is None:
            for path in paths:
                require_present(Path(path))
            yield [stack.enter_context(PassLog.open(p, readonly=True)) for p in paths]
            return
        logs, failed = [], []
        for path in paths:
            try:  # found in the data directory, not given: never worded as a --db
                require_present(Path(path))
                logs.append(stack.enter_context(PassLog(Path(path), readonly=True)))
            except SmpError as exc:
                failed.append((Path(path), exc))
        if failed and not logs:
            raise failed[0][1]
        skipped.extend(failed)
        yield _once(logs, skipped)


def _once(logs: list[Any], skipped: list[tuple[Path, SmpError]]) -> list[Any]:
    """`logs` without those holding a log read in their place (`copies`): each is named in
    `skipped` (CopiedLog; DivergedLog for one read all the same) and read once."""
    kept, found = copies(logs)
    skipped.extend((c.path, c) for c in found)
    return kept


def all_sessions(logs: Sequence[Any], where: Any = None,
                 read: Sequence[tuple[Path, Any]] | None = None) -> list[Any]:
    """Every session of every log (without passes), oldest first (by opening time; a tie in
    log order), those `where` (an ExportFilter) selects when given. `read`: the logs'
    `sessions_of`, when already read."""
    rows = [s for _, s in (sessions_of(logs) if read is None else read)
            if where is None or where.matches(s.session_id, s.client_ref, s.opened_at)]
    return sorted(rows, key=lambda s: s.opened_at)


def find_session(logs: Sequence[Any], session_id: str, *, hint: str) -> tuple[Any, Any]:
    """(log, session with its passes) that `session_id` names across EVERY log: the exact id,
    or the prefix of exactly one session (the rule resume and close use,
    `smpdevice.sessions.resume.pick_session`); UnknownSession naming the candidates else."""
    from smpdevice.sessions.resume import pick_session, require_session_id

    require_session_id(session_id, UnknownSession)
    found = matching(sessions_of(logs), session_id)
    where = "the pass log" if len(logs) <= 1 else f"the {len(logs)} pass logs"
    path, sid = pick_session(found, session_id, where=where, hint=hint, error=UnknownSession,
                             todo="show it from the one log meant (--db)", read_only=True)
    log = next(log for log in logs if Path(log.path) == path)
    return log, log.session(sid)


def export_all(logs: Sequence[Any], fmt: str, output: TextIO, *, identified: bool = False,
               where: Any = None) -> int:
    """Every log's passes written to `output`, one log after the other; a CSV keeps one header
    line. Returns the number of passes."""
    count = 0
    for i, log in enumerate(logs):
        buffer = io.StringIO(newline="")
        count += log.export(fmt, buffer, identified=identified, where=where)
        text = buffer.getvalue()
        if fmt == "csv" and i > 0:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        output.write(text)
    return count
