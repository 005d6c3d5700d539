"""Two files of one data directory holding one log (a copy, a backup left beside it, a link):
the one rule by which readers (`logset.open_all`), `smp sessions verify` and the service's
`sessions.verify` tell which one to read, and by which a writer refuses to write into one of
them (review 18b). One log is one log id (to which every signed head is bound), or, for an
older log without one, one first record; of two files holding it, the one whose chain extends
the other's is the log written on, whatever the names.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError


class CopiedLog(SmpError):
    """A log of the data directory carrying the log id of one read before it (a copy of it,
    or another name for it): read once, as that one, and named (`copied`)."""

    def __init__(self, message: str, path: Path | str = ""):
        super().__init__(message)
        self.path = Path(path)  # the file named (not read, or read beside the other)


def copied(path: Path, first: Path, log_id: str, how: str = "a copy of it, or another name "
           "for it") -> str:
    """The line naming a log that holds the same log as `first` (one log id, to which every
    signed head is bound; or, for an older log without one, the same first record): `smp
    sessions verify` fails on it; readers read the log once, as `first`."""
    return (f"the pass log {path} holds the same log as {first} ({_named(log_id)}: {how}); "
            f"read once, as {first}. Keep one of them in the data directory (move the other "
            "out)")


def _named(log_id: str) -> str:
    return f"log id {log_id}" if log_id else "the same first record, an older log without an id"


class DivergedLog(CopiedLog):
    """Two files holding one log, each written after the copy was made: both are read (each
    holds records the other has not), their common records twice, and named."""


def diverged(path: Path, first: Path, log_id: str, common: int) -> str:
    return (f"the pass log {path} holds the same log as {first} ({_named(log_id)}), but each "
            f"was written after the copy (they differ after record {common}): both are read, "
            f"their first {common} records twice. Keep both safe; move one of them out of "
            "the data directory")


class _Chain:
    """What tells one log from another: its id, first record and head (None: unreadable)."""

    def __init__(self, log: Any):
        self.log = log
        try:
            self.log_id, self.head = log.log_id, log.head()
            self.first = _hash_at(log, 1) if self.head[0] else ""
        except SmpError:  # read as it can be; its own error comes with what is read of it
            self.log_id, self.head, self.first = "", (0, ""), ""

    def same_log(self, other: _Chain) -> bool:
        if self.log_id and other.log_id:
            return self.log_id == other.log_id
        return bool(self.first) and self.first == other.first  # an older log has no id

    def extends(self, other: _Chain) -> bool:
        """This log holds every record of `other` (and maybe more): `other` is a copy of it
        taken earlier, or the same."""
        seq, digest = other.head
        return seq <= self.head[0] and (seq == 0 or _hash_at(self.log, seq) == digest)


def _hash_at(log: Any, seq: int) -> str:
    rows = log.records(after_seq=seq - 1)
    try:
        record = next(rows, None)
    finally:
        rows.close()
    return record.hash if record is not None and record.seq == seq else ""


def copies(logs: Sequence[Any]) -> tuple[list[Any], list[CopiedLog]]:
    """(the logs to read, in order; one CopiedLog per copy) of `logs` (open PassLogs, the
    station's first, then by name): of two files holding one log (the same log id; for an
    older log without one, the same first record), the one whose chain extends the other's
    is read (the log written on, not a stale backup, whatever the names), the other named
    (its `path`); if each was written after the copy, both are read and
    named (DivergedLog). The one rule of readers, `smp sessions verify` and the service."""
    kept: list[_Chain] = []
    found: list[CopiedLog] = []
    for chain in map(_Chain, logs):
        same = [k for k in kept if k.same_log(chain)]
        older = next((k for k in same if k.extends(chain)), None)
        newer = next((k for k in same if chain.extends(k)), None)
        if older is not None:  # this file holds nothing the one read has not
            found.append(_copy(chain, older))
        elif newer is not None:  # this file is the one written on: read in its place
            kept[kept.index(newer)] = chain
            found.append(_copy(newer, chain))
        else:
            kept.append(chain)
            if same:
                common = _common(same[0], chain)
                found.append(DivergedLog(diverged(Path(chain.log.path), Path(same[0].log.path),
                                                  chain.log_id and same[0].log_id, common),
                                         chain.log.path))
    return [k.log for k in kept], found


def _copy(copy: _Chain, read: _Chain) -> CopiedLog:
    seq, total = copy.head[0], read.head[0]
    how = ("a copy of it, or another name for it" if seq == total else
           f"an older copy of it: its {seq} records are the first of the {total} there")
    path, first = Path(copy.log.path), Path(read.log.path)
    return CopiedLog(copied(path, first, copy.log_id and read.log_id, how), path)


def _common(a: _Chain, b: _Chain) -> int:
    """The number of records two diverged copies of one log share (a binary search)."""
    low, high = 1, min(a.head[0], b.head[0])  # record `low` is shared, `high + 1` is not
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if _hash_at(a.log, mid) == _hash_at(b.log, mid) else (
            low, mid - 1)
    return low


def copy_problems(paths: Sequence[Path]) -> list[CopiedLog]:
    """`copies` of the logs at `paths` (opened read-only; one that cannot be is left out:
    its own check names it): for `smp sessions verify` and the service's."""
    from smpdevice.passlog import PassLog

    with contextlib.ExitStack() as stack:
        logs = []
        for path in paths:
            with contextlib.suppress(SmpError, OSError):
                logs.append(stack.enter_context(PassLog(Path(path), readonly=True)))
        return copies(logs)[1]


def refuse_copy_beside(path: Path) -> None:
    """PassLogError (exit 3) before a writer opens the log at `path` (nothing written) when
    another pass log of its directory holds the same log (its log id), both named as the logs
    readers read together (the station's, each pen's): writing on would split one log in two
    files. Names the file to move out."""
    from smpdevice.passlog import PassLog
    from smpdevice.paths import PASS_LOG_NAME, PEN_LOG_GLOB
    from smpdevice.records.model import PassLogError

    path = Path(path)
    if path.name != PASS_LOG_NAME and not fnmatch.fnmatchcase(path.name, PEN_LOG_GLOB):
        return  # a log of another name (--db fork.sqlite) is never read with those beside it
    others = [p for p in sorted({path.with_name(PASS_LOG_NAME), *path.parent.glob(PEN_LOG_GLOB)})
              if p.name != path.name and p.is_file()]
    if not others or not path.is_file():
        return
    with contextlib.ExitStack() as stack:
        try:
            this = _Chain(stack.enter_context(PassLog(path, readonly=True)))
        except (SmpError, OSError):
            return  # the writer's own open names what is wrong with it
        for other in others:
            try:
                if os.path.samefile(path, other):
                    continue  # another name (a link) for the same file: one log
                that = _Chain(stack.enter_context(PassLog(other, readonly=True)))
            except (SmpError, OSError):
                continue  # a file that cannot be read is named by the readers
            if this.log_id and this.log_id == that.log_id:
                raise PassLogError(_split(path, other, this, that))


def _split(path: Path, other: Path, this: _Chain, that: _Chain) -> str:
    if that.extends(this) and this.head[0] < that.head[0]:
        move = f"move {path} out (an older copy: {other} holds its records and more)"
    elif this.extends(that):
        move = f"move {other} out (a copy: {path} holds all its records)"
    else:
        move = ("they already differ (each was written after the copy): move one of them "
                "out of the data directory and keep both safe")
    return (f"not writing the pass log {path}: {other} holds the same log (log id "
            f"{this.log_id}, a copy); writing on would split it in two. Nothing was written; "
            f"{move}, then run again")
