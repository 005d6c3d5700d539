"""Needle work outside a recorded pass, kept for a resume's count (`sessions.crash_count`).

A pass cut by a host crash or a lost link is counted by the pen's own counters up to the next
pass begun on the pen, or now. A session's pass keeps the pen's counters in its begin record
in a pass log, which the resume reads; the needle also moves outside any pass: a calibration's
speed check (saved or not: a guided `smp calibrate` aborted after it, a failed fit, the
service's `calibration.spin`), a bare `arm(); start_needle()` through the Python API or the
service's `pen.start`. Each of these appends one line to `needle-work.jsonl` in the
controller's `needle_work_dir` (default: the data directory; a service's: its own data
directory): the pen's serial, what it was, the pen's counters at that moment, synced to disk
before any frame of it is sent: a line that cannot be written refuses the start. A speed
check is noted once per calibration (its first spin: every later spin's dots come after it).
A session's
pass writes none: its begin record is the pass log's; only `TreatmentSession` says a start is
one (`_recorded_pass_next`), for the next start while the pen stays armed. A line torn by a
crash never glues the next one to it: a line is written on a fresh line.

A resume reads the file of the data directory and of the pass log's directory: a line of the
pen whose counters lie between the cut pass's begin and the count's end (`within`, the pen's
counters, never the host's clock) sets the count aside ("cannot tell"), and so does a line
recorded without counters, or a file or line that cannot be read (a link leading nowhere
too). The E-stop never writes.

The file is never cut nor rotated away (review 19): a session stays resumable for as long as
it is left open, from a pass log in any directory, and a line written after its cut pass
began cannot be told for certain from an older one (a pen restart proves a line older only
if the count's own restart check holds, which leans on the host's clock); dropping one would
count another movement's dots as the cut pass's. It grows about 190 bytes a line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError

NEEDLE_WORK_NAME = "needle-work.jsonl"
ORDERING_KEYS = ("uptime_ms", "impressions", "strokes")  # each only grows within one boot
REPORT_WAIT_S = 1.0  # at least, for a report after the last stop: a line needs the counters


def note_needle_work(pen: Any, what: str) -> None:
    """Before `pen` moves its needle outside a pass: one durable line (see the module). Its
    counters are from a report that shows them now (`_report_of_counters`): one from before
    a stop just made misses that stop's last dots (review 22c); none within REPORT_WAIT_S (or
    1.5 report periods): none ("cannot tell")."""
    if pen.identity is None:
        return  # not connected: nothing will be sent
    if pen._report_of_counters() is None:
        pen._wait_news(lambda: pen._report_of_counters() is not None,
                       pen._report_wait_s(REPORT_WAIT_S))
    t = pen._report_of_counters()
    counters = None if t is None else {"uptime_ms": int(t.uptime_ms),
                                       "impressions": int(t.impressions),
                                       "strokes": int(t.strokes)}
    line = json.dumps({"pen_serial": pen.identity.serial, "what": what,
                       "at": pen.record_now().isoformat(), "counters": counters})
    try:
        directory = getattr(pen, "needle_work_dir", None)
        if directory is None:
            from smpdevice.paths import data_dir

            directory = data_dir()
        append_line(Path(directory) / NEEDLE_WORK_NAME, line)
    except (OSError, SmpError) as exc:
        raise SmpError(f"the needle was not moved ({what}): its record could not be written "
                       f"to the needle-work directory ({exc}); a resume needs it to count a cut "
                       "pass. Make that directory writable.") from exc


def append_line(path: Path, line: str) -> None:
    """One write of the whole line (O_APPEND: lines of two hosts never interleave), synced;
    after a line torn by a crash mid-write (no newline at the file's end) it begins with one,
    so the torn line ends there and never takes this one with it."""
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        os.write(fd, (("\n" if torn else "") + line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:  # the new file's name durable too
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@dataclass
class NeedleWork:
    """The pen's needle work outside passes: (what, counters or None, host time) each, and
    the files or lines that could not be read."""

    marks: list[tuple[str, Mapping[str, int] | None, str]] = field(default_factory=list)
    unread: list[tuple[str, str]] = field(default_factory=list)  # (where, why)

    def why_not_counted(self, begin: Mapping[str, int], end: Mapping[str, int]) -> str | None:
        """Why a pass counted from `begin` to `end` (the pen's counters, one boot) cannot be:
        needle work of the pen between them, or not placed; None when none can be."""
        for what, counters, _at in self.marks:
            if counters is not None and within(counters, begin, end):
                return (f"the pen's needle ran outside a pass since ({what} at the pen's "
                        f"uptime {counters['uptime_ms'] / 1000.0:.1f} s, after this pass's "
                        f"{begin['uptime_ms'] / 1000.0:.1f} s)")
        for what, counters, at in self.marks:
            if counters is None:
                return (f"the pen's needle ran outside a pass ({what}, {at} by the host's "
                        "clock) recorded without its counters: whether since cannot be told")
        if self.unread:
            where, why = self.unread[0]
            return (f"the record of needle work outside passes {where} cannot be read ({why}): "
                    "whether the needle ran since cannot be told")
        return None


def within(counters: Mapping[str, int], begin: Mapping[str, int],
           end: Mapping[str, int]) -> bool:
    """Whether `counters` lie between `begin` and `end` on every count (bounds included: the
    same report; another boot's that happen to fall within are taken as between, the safe
    way). A line whose counters lack a count cannot be placed: between, the safe way."""
    try:
        return all(begin[k] <= counters[k] <= end[k] for k in ORDERING_KEYS)
    except (KeyError, TypeError):
        return True


def read_needle_work(dirs: Iterable[Path], pen_serial: str) -> NeedleWork:
    """Pen `pen_serial`'s lines in each directory's file (a missing file: none there)."""
    found, seen = NeedleWork(), set()
    for directory in dirs:
        path = Path(directory) / NEEDLE_WORK_NAME
        key = os.path.abspath(path)
        if key in seen:
            continue
        seen.add(key)
        try:
            text = path.read_bytes().decode()
        except FileNotFoundError:
            if os.path.lexists(path):  # a link leading nowhere: a file there, not read
                found.unread.append((str(path), "a link leading nowhere"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            found.unread.append((str(path), type(exc).__name__))
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                mark = json.loads(line)
                serial, counters = mark["pen_serial"], mark["counters"]
                if counters is not None and not isinstance(counters, dict):
                    raise TypeError("counters")
            except (ValueError, KeyError, TypeError) as exc:
                found.unread.append((f"{path} line {n}", type(exc).__name__))
                continue
            if serial == pen_serial:
                found.marks.append((str(mark.get("what", "needle work")), counters,
                                    str(mark.get("at", "?"))))
    return found


def needle_work_dirs(passlog: Any) -> list[Path]:
    """Where a resume reads: the pass log's directory and the data directory."""
    dirs = []
    path = getattr(passlog, "path", None)
    if isinstance(path, str | os.PathLike):
        dirs.append(Path(path).parent)
    try:
        from smpdevice.paths import data_dir

        dirs.append(data_dir(create=False))
    except SmpError:
        pass  # no data directory can be named: the pass log's is read
    return dirs
