"""Work of a pen recorded in the OTHER pass logs beside a session's log, for a resume's count.

A pass cut by a host crash or a lost link is counted by the pen's counters up to the next pass
begun on that pen (`crash_count`). Its own log says when one began there (in the log's order);
a pen's other work may be in another log of the same directory: the station's
`passlog.sqlite`, each pen's `passlog-<serial>.sqlite`, or any log a run was given there by
`--db` under a name of its own. So every file of the directory that is a pass log by its
content is read (records.logset's one rule, as `smp sessions` and the service read them); one
that surely is none (the calibrations, another program's SQLite file, a text) is skipped, and
one named `*.sqlite` or holding an SQLite header that cannot be read (damaged, locked past the
wait, a link leading nowhere) cannot say either way: "cannot tell", named.

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
    """The entries of `path`'s directory other than `path` that may be pass logs: the one
    finder's candidates (`logset.candidates`: those named `*.sqlite` whatever they are, the
    files beginning with SQLite's header), read by `_pen_passes`; nothing opened here."""
    from smpdevice.records.logset import candidates

    here = _identity(path)
    return [other for other in candidates(path.parent) if _identity(other) != here]


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
    from smpdevice.records.logset import require_present, surely_no_log
    from smpdevice.records.sqlite_file import NotAPassLog

    require_present(path)
    if surely_no_log(path):  # the one rule of readers: the calibrations, another program's
        raise _NotAPassLog(f"{path.name} is no pass log")
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


def _log_id(passlog: Any) -> str:
    try:
        return str(getattr(passlog, "log_id", "") or "")
    except Exception:  # unreadable here: no log taken for a copy of it
        return ""


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
