"""Work of a pen recorded in the OTHER pass logs beside a session's log, for a resume's count.

A pass cut by a host crash or a lost link is counted by the pen's counters up to the next pass
begun on that pen (`crash_count`). Its own log says when one began there (in the log's order);
a pen's other work may be in another log of the same directory: the station's
`passlog.sqlite`, each pen's `passlog-<serial>.sqlite`, or any log a run was given there by
`--db` under a name of its own. So every file of the directory that is a pass log by its
content is read (`beside`); one that surely is none (the calibrations, another program's
SQLite file, a text) is skipped, and one named `*.sqlite` or holding an SQLite header that
cannot be read (damaged, locked past the wait, a link leading nowhere) cannot say either way:
"cannot tell", named.

Whether the pen's pass there began after the cut pass is told by the PEN's counters, never by
the host's clock (a clock stepped back dates a later pass earlier): within one boot of the pen
its uptime and its counters only grow, so a pass that began between the cut pass's begin and
the count's end has begin counters within theirs (`within`). One outside them began before,
after, or in another boot: its dots are not in the count. A pass recorded without counters
cannot be placed: "cannot tell".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smpdevice.control.needle_work import within


@dataclass(frozen=True)
class PenPass:
    """A pass of the pen in another log: its log's name, its start by the host's clock (said,
    never used to order) and the pen's counters at its begin (None: not recorded)."""

    log: str
    started_at: str
    counters: Mapping[str, int] | None


@dataclass
class OtherWork:
    """The pen's passes in the other logs, and the logs not read."""

    passes: list[PenPass] = field(default_factory=list)
    unread: list[tuple[str, str]] = field(default_factory=list)  # (log name, why)

    def why_not_counted(self, begin: Mapping[str, int], end: Mapping[str, int]) -> str | None:
        """Why a pass whose begin record kept the pen's counters `begin`, counted up to `end`
        (the pen's counters at the next pass begun on it, or now; the same boot), cannot be
        counted by them because of another log; None when no other log shows (or may hide)
        the pen's work in between."""
        since = [p for p in self.passes if p.counters is not None
                 and within(p.counters, begin, end)]
        if since:
            first = min(since, key=lambda p: p.counters["uptime_ms"] if p.counters else 0)
            up_s = (first.counters or {}).get("uptime_ms", 0) / 1000.0
            return (f"the pass log {first.log} has a session of this pen since (a pass begun "
                    f"at the pen's uptime {up_s:.1f} s, after this pass's "
                    f"{begin['uptime_ms'] / 1000.0:.1f} s): its dots are on the pen's "
                    "counters too")
        unplaced = [p for p in self.passes if p.counters is None]
        if unplaced:
            p = unplaced[0]
            return (f"the pass log {p.log} has a pass of this pen recorded without the pen's "
                    f"counters (begun {p.started_at} by the host's clock): whether it moved "
                    "this pen's needle since cannot be told")
        if self.unread:
            name, why = self.unread[0]
            return (f"the pass log {name} beside it cannot be read ({why}): whether another "
                    "session moved this pen's needle since cannot be told")
        return None


def beside(path: Path) -> list[Path]:
    """The entries of `path`'s directory other than `path` that may be pass logs: those named
    `*.sqlite` whatever they are (a folder, a link leading nowhere: named when opened), and
    the files beginning with SQLite's header. Side files (-wal, -shm, .lock), anchors, texts
    and folders are skipped by their first bytes: one look at each entry, nothing opened as
    a database here."""
    from smpdevice.paths import SQLITE_HEADER

    here, found = _identity(path), []
    with os.scandir(path.parent) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            other = Path(entry.path)
            if _identity(other) == here:
                continue
            if entry.name.endswith(".sqlite") or _head(other, len(SQLITE_HEADER)) == \
                    SQLITE_HEADER:
                found.append(other)
    return found


def other_work(passlog: Any, session_id: str, pen_serial: str, after: str | None) -> OtherWork:
    """The passes of pen `pen_serial` in the logs beside `passlog`'s (none for a log without
    a file: a central one holds every client's), sessions other than `session_id` (a copy of
    it synced there is not other work; nor, in a copy of this log, a pass this log holds: its
    order is this log's), read when a pass is to be counted (`after`, its start, given)."""
    found = OtherWork()
    path = getattr(passlog, "path", None)
    if after is None or not isinstance(path, str | os.PathLike):
        return found
    try:
        candidates = beside(Path(path))
    except OSError as exc:  # the directory itself cannot be listed: nothing can be told
        found.unread.append((Path(path).parent.name or str(Path(path).parent),
                             _one_line(exc)))
        return found
    mine = _log_id(passlog)
    for other in candidates:
        try:
            found.passes.extend(_pen_passes(other, session_id, pen_serial, passlog, mine))
        except _NotAPassLog:
            continue  # another program's SQLite file (the calibrations): surely no pass log
        except Exception as exc:  # anything: never taken for "no work there"
            found.unread.append((other.name, _one_line(exc)))
    return found


class _NotAPassLog(Exception):
    pass


def _pen_passes(path: Path, session_id: str, pen_serial: str, passlog: Any,
                mine: str) -> list[PenPass]:
    from smpdevice.passlog import PassLog
    from smpdevice.records.logset import require_present
    from smpdevice.records.sqlite_file import NotAPassLog

    require_present(path)
    if not _marked(path):
        raise _NotAPassLog(f"{path.name} has a schema_version table but no pass log's marks")
    found = []
    try:
        log = PassLog(path, readonly=True)
    except NotAPassLog as exc:
        raise _NotAPassLog(str(exc)) from exc
    with log:
        copy = bool(mine) and log.log_id == mine  # a copy of this log (a backup kept here)
        for s in log.sessions():
            if s.pen_serial != pen_serial or s.session_id == session_id:
                continue  # another pen, or this session
            counters = log.pen_counters_at_begin(s.session_id)
            held = {p.pass_id for p in passlog.passes(s.session_id)} if copy else set()
            found += [PenPass(path.name, p.started_at, counters.get(p.pass_id))
                      for p in log.passes(s.session_id) if p.pass_id not in held]
    return found


# The columns of a pass log's hash-chained `records` table, in every schema version
# (records/sqlite_schema.py): with `meta.log_id` (schema 3 on), the log's own marks.
LOG_COLUMNS = frozenset(("seq", "kind", "session_id", "pass_id", "written_at", "body",
                         "prev_hash", "hash"))


def _marked(path: Path) -> bool:
    """False only for an SQLite file with a `schema_version` table (which the pass log's
    open takes for a log: a common name for another program's migrations) that bears none of
    the log's own marks: a `records` table with the log's columns, a `meta` table naming the
    log's id. Anything else is left to the log's open as before (a damaged or locked file
    raises: "cannot tell"; one without `schema_version` is refused as no pass log)."""
    import sqlite3

    from smpdevice.records.readonly import connect_readonly, schema_names

    names = schema_names(path)
    if names is None or "schema_version" not in names:
        return True
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


def _log_id(passlog: Any) -> str:
    try:
        return str(getattr(passlog, "log_id", "") or "")
    except Exception:  # unreadable here: no log taken for a copy of it
        return ""


def _head(path: Path, size: int) -> bytes | None:
    """The first `size` bytes of the regular file `path` (a link to one too); None for
    anything else or a file that cannot be read (never opened: a pipe, a device)."""
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return None


def _identity(path: Path) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except OSError:
        return str(Path(os.path.abspath(path)))


def _one_line(exc: BaseException) -> str:
    """The short cause (SQLite's "file is not a database", "database is locked") when the
    error has one: the pass log's own message names the path again, at length."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if len(text) <= 100 else text[:97] + "..."
