"""Two files of one data directory holding one log (a copy, a backup left beside it, a link):
the one rule by which readers (`logset.open_all`), `smp sessions verify` and the service's
`sessions.verify` tell which one to read, and by which a writer refuses to write into one of
them (review 18b). One log is one log id (to which every signed head is bound) or one first
record, whether or not the files have ids (an older log copied, then migrated in each file,
draws two ids). Of two files holding it, the one whose chain extends the other's is the log
written on, whatever the names, when its chain head is signed (one Ed25519 check): records
added by hand never displace the signed log (review 18f). A file named is named with its
anchors file, to be moved out with it.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import os
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError


class CopiedLog(SmpError):
    """A log of the data directory holding the log of one read in its place (a copy of it,
    or another name for it): not read, and named (`copied`)."""

    def __init__(self, message: str, path: Path | str = ""):
        super().__init__(message)
        self.path = Path(path)  # the file named (not read, or read beside the other)


def moving(path: Path) -> str:
    """'move X out', naming its anchors file too when there is one: moved without it, the
    receipts left say its log is missing (verify fails), or name the log again."""
    from smpdevice.records.signing import anchors_path

    anchors = anchors_path(Path(path))
    return f"move {path} out" + (f" (and its anchors file {anchors})"
                                 if os.path.lexists(anchors) else "")


def copied(path: Path, first: Path, ident: str, how: str = "a copy of it, or another name "
           "for it") -> str:
    """The line naming a log that holds the same log as `first` (one log id, to which every
    signed head is bound; or the same first record): `smp sessions verify` fails on it;
    readers read the log once, as `first`."""
    return (f"the pass log {path} holds the same log as {first} ({ident}: {how}); "
            f"read once, as {first}. Keep one of them in the data directory: "
            f"{moving(path)}")


def _ident(a: _Chain, b: _Chain) -> str:
    """What makes two files one log, in words."""
    if a.log_id and a.log_id == b.log_id:
        return f"log id {a.log_id}"
    if not a.log_id or not b.log_id:
        return "the same first record, an older log without an id"
    return (f"the same first record: an older log given an id in each file, "
            f"{' and '.join(sorted({a.log_id, b.log_id}))}")


class DivergedLog(CopiedLog):
    """Two files holding one log, each written after the copy was made (or one extended by
    records no signature vouches for): both are read (each holds records the other has not),
    their common records twice, and named."""


class UnsignedCopy(CopiedLog):
    """A file holding a signed log and more records whose head no trusted key signed (added
    by hand): not read, and named; the signed log is read."""


class UnsignedTail(DivergedLog):
    """The log read holds records after its signed head (added by hand): read all the same
    (its signed head covers the copy's records), and named."""


def _tail(log: _Chain, covered: int) -> str:
    path = Path(log.log.path)
    return (f"the pass log {path} holds records after its signed head (records "
            f"{covered + 1}-{log.head[0]} are under no head signed by a trusted key: added by "
            f"hand, or by another installation): read all the same. Check it (smp sessions "
            f"verify --db {path})")


def diverged(path: Path, first: Path, ident: str, common: int) -> str:
    return (f"the pass log {path} holds the same log as {first} ({ident}), but each "
            f"was written after the copy (they differ after record {common}): both are read, "
            f"their first {common} records twice. Keep both safe; {_one_out(path, first)}")


def _one_out(a: Path, b: Path) -> str:
    return f"move one of them out of the data directory ({moving(a)}, or {moving(b)})"


def _unsigned(longer: Path, shorter: Path, seq: int, read_both: bool) -> str:
    what = (f"the pass log {longer} holds the log of {shorter} and more, but its records "
            f"after {seq} are not under a head signed by a trusted key (added by hand, or "
            "by another installation)")
    if read_both:
        return (f"{what}, and no key trusted here signed either head: both are read, their "
                f"first {seq} records twice. Keep both safe; {_one_out(longer, shorter)}")
    return (f"{what}: not read, {shorter} is. Check it (smp sessions verify --db "
            f"{longer}); keep it safe outside the data directory: {moving(longer)}")


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
        """One log id, or one first record (ids or not: one older log migrated in two files
        draws two ids) - the one rule of writers and readers."""
        if self.log_id and self.log_id == other.log_id:
            return True
        return bool(self.first) and self.first == other.first

    def extends(self, other: _Chain) -> bool:
        """This log holds every record of `other` (and maybe more): `other` is a copy of it
        taken earlier, or the same."""
        seq, digest = other.head
        return seq <= self.head[0] and (seq == 0 or _hash_at(self.log, seq) == digest)

    def signed(self, keys_of: _Chain) -> bool:
        """This log's chain head is its last record's, signed by a trusted key (`signed_to`)."""
        return self.head[0] > 0 and self.signed_to(keys_of) == self.head[0]

    def signed_to(self, keys_of: _Chain) -> int:
        """The record this log's chain head covers (0: none) when that head is one of its
        records, signed by a trusted key: this installation's (as verify checks), else, on a
        machine without one, a key `keys_of` (the older copy: a forger would alter both
        files) records. Records after it are not under a signed head (added by hand)."""
        from smpdevice.records.keys import load_public
        from smpdevice.records.signing import head_statement

        try:
            head = self.log.current_head()
            own = load_public()
            keys = {own.fingerprint: own} if own is not None else _recorded_keys(keys_of.log)
            if head is None or not head.signature or head.seq > self.head[0] or (
                    _hash_at(self.log, head.seq) != head.hash):
                return 0
        except (SmpError, sqlite3.Error, OSError):  # an older log: no signed head
            return 0
        key = keys.get(head.key_fingerprint or "")
        good = key is not None and key.verify(head.signature, head_statement(
            self.log_id, head.seq, head.hash))
        return head.seq if good else 0


def _recorded_keys(log: Any) -> dict[str, Any]:
    from smpdevice.records.keys import recorded_keys

    with log._reading():  # the keys table: not chained, so read from the older copy only
        return recorded_keys(log._conn)


def _hash_at(log: Any, seq: int) -> str:
    rows = log.records(after_seq=seq - 1)
    try:
        record = next(rows, None)
    finally:
        rows.close()
    return record.hash if record is not None and record.seq == seq else ""


def copies(logs: Sequence[Any]) -> tuple[list[Any], list[CopiedLog]]:
    """(the logs to read, in order; one CopiedLog per copy) of `logs` (open PassLogs, the
    station's first, then by name): of two files holding one log (`_Chain.same_log`), the one
    whose chain extends the other's is read when its head is signed (the log written on, not
    a stale backup, whatever the names), the other named (its `path`); an extension no
    signature vouches for is named and not read when the other's head is signed
    (UnsignedCopy), else both are read; if each was written after the copy, both are read
    and named (DivergedLog). The one rule of readers, `smp sessions verify` and the service."""
    kept: list[_Chain] = []
    found: list[CopiedLog] = []
    for chain in map(_Chain, logs):
        same = [k for k in kept if k.same_log(chain)]
        related = next((k for k in same if k.extends(chain) or chain.extends(k)), None)
        if related is None:
            kept.append(chain)
            if same:
                common = _common(same[0], chain)
                found.append(DivergedLog(diverged(Path(chain.log.path), Path(same[0].log.path),
                                                  _ident(chain, same[0]), common),
                                         chain.log.path))
            continue
        longer, shorter = (related, chain) if related.extends(chain) else (chain, related)
        covered = 0 if longer.head == shorter.head else longer.signed_to(shorter)
        # read in the other's place when its signed head goes past the other's records: a
        # tail after that head is named (18h); an extension wholly unsigned is not read (18f)
        if longer.head == shorter.head or covered > shorter.head[0]:
            kept[kept.index(related)] = longer  # the log written on, in the first one's place
            found.append(_copy(shorter, longer))
            if 0 < covered < longer.head[0]:  # its signed head covers the shorter's records:
                found.append(UnsignedTail(_tail(longer, covered), longer.log.path))  # 18h
        elif shorter.signed(shorter):  # records added by hand: never read in its place
            kept[kept.index(related)] = shorter
            found.append(UnsignedCopy(_unsigned(Path(longer.log.path), Path(shorter.log.path),
                                                shorter.head[0], False), longer.log.path))
        else:  # no signature to tell them apart: both read
            kept.append(chain)
            found.append(DivergedLog(_unsigned(Path(longer.log.path), Path(shorter.log.path),
                                               shorter.head[0], True), chain.log.path))
    if _naming.get():
        for problem in found:
            _first_naming(problem.path)
    return [k.log for k in kept], found


def _copy(copy: _Chain, read: _Chain) -> CopiedLog:
    seq, total = copy.head[0], read.head[0]
    how = ("a copy of it, or another name for it" if seq == total else
           f"an older copy of it: its {seq} records are the first of the {total} there")
    path, first = Path(copy.log.path), Path(read.log.path)
    return CopiedLog(copied(path, first, _ident(copy, read), how), path)


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
    return unread_copies(paths)[1]


def unread_copies(paths: Sequence[Path]) -> tuple[set[Path], list[CopiedLog]]:
    """(the files of `paths` that readers leave unread, `copy_problems`): the readers' rule
    (`copies`) for a caller that goes through the files itself (`smp sessions sync`). A
    file that cannot be opened is not among them (its own open names it)."""
    from smpdevice.passlog import PassLog

    with contextlib.ExitStack() as stack:
        logs = []
        for path in paths:
            with contextlib.suppress(SmpError, OSError):
                logs.append(stack.enter_context(PassLog(Path(path), readonly=True)))
        kept, found = copies(logs)
        read = {id(log) for log in kept}
        return {Path(log.path) for log in logs if id(log) not in read}, found


# The copies a `warning:` line of this process has named (their real paths): the writer's
# stale-copy line and a reader's naming (`smp run --resume` finds the session by the readers'
# rule, then opens the log to write) are one line a copy, once a process.
_named: set[str] = set()
_naming = contextvars.ContextVar("_naming", default=False)


@contextlib.contextmanager
def readers_name_copies() -> Iterator[None]:
    """Within it, each copy the readers' rule (`copies`) finds counts as named: for a caller
    that says every CopiedLog it is given (`sessions.resume.find_session_log`), so that a
    writer opened later in this process does not name the same file a second time."""
    token = _naming.set(True)
    try:
        yield
    finally:
        _naming.reset(token)


def _first_naming(path: Path | str) -> bool:
    """True the first time this process names the file at `path` (then never again)."""
    key = os.path.realpath(path)
    if key in _named:
        return False
    _named.add(key)
    return True


def refuse_copy_beside(path: Path) -> None:
    """PassLogError (exit 3) before a writer opens the log at `path` (nothing written) when
    another pass log of its directory holds the same log (`_Chain.same_log`, the readers'
    rule) and records this one lacks, or the same records (two writers would split it): names
    the file to move out, with its anchors file. When this log extends the other (a stale
    backup), it records on: one `warning:` line (once a process) names the older copy.
    "Another pass log": in the data directory, every one the readers read with it
    (`logset.pass_logs_in`: by content, whatever the names); elsewhere, a station's or a
    pen's log beside another (`passlog*.sqlite`): a log of another name there (--db
    fork.sqlite) is never read with those beside it."""
    from smpdevice.passlog import PassLog
    from smpdevice.records.model import PassLogError

    path = Path(path)
    if not path.is_file():
        return  # a new log: no copy of it anywhere yet
    try:
        others = [p for p in _logs_read_with(path) if p.name != path.name and p.is_file()]
    except OSError:
        return  # the directory cannot be listed: the writer's own open names it
    if not others:
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
            if not this.same_log(that):
                continue
            stale = this.head != that.head and this.extends(that)
            if stale and (this.signed(that) or not that.signed(that)):
                _warn_stale(path, other, this, that)
                continue
            raise PassLogError(_split(path, other, this, that))


def _logs_read_with(path: Path) -> list[Path]:
    """The other logs readers read as one with the log at `path` (see refuse_copy_beside)."""
    from smpdevice.paths import PASS_LOG_NAME, PEN_LOG_GLOB, data_dir
    from smpdevice.records.logset import pass_logs_in

    with contextlib.suppress(SmpError, OSError):  # no home: no data directory to read
        if os.path.samefile(path.parent, data_dir(create=False)):
            return pass_logs_in(path.parent)
    if path.name != PASS_LOG_NAME and not fnmatch.fnmatchcase(path.name, PEN_LOG_GLOB):
        return []
    return sorted({path.with_name(PASS_LOG_NAME), *path.parent.glob(PEN_LOG_GLOB)})


def _warn_stale(path: Path, other: Path, this: _Chain, that: _Chain) -> None:
    if not _first_naming(other):  # named already (by this line, or a reader's): once
        return
    sys.stderr.write(f"warning: {other} is an older copy of the pass log {path} "
                     f"({_ident(this, that)}: its {that.head[0]} records are the first of "
                     f"the {this.head[0]} here); readers read {path}. Recording on; "
                     f"{moving(other)} to keep it as a backup\n")


def _split(path: Path, other: Path, this: _Chain, that: _Chain) -> str:
    if this.head == that.head:
        move = f"{moving(other)} (a copy: {path} holds all its records)"
    elif that.extends(this) and that.signed(this):
        move = f"{moving(path)} (an older copy: {other} holds its records and more)"
    elif that.extends(this) and this.signed(this):
        move = (f"{moving(other)} and keep it safe: its records after {this.head[0]} are not "
                "under a head signed by a trusted key (added by hand?); check it with smp "
                f"sessions verify --db {other}")
    elif this.extends(that) and that.signed(that):
        move = (f"{moving(path)} and keep it safe: its records after {that.head[0]} are not "
                "under a head signed by a trusted key (added by hand?); check it with smp "
                f"sessions verify --db {path}")
    else:
        move = ("they differ (each was written after the copy, or no key trusted here signed "
                "either head): "
                f"{_one_out(path, other)}, and keep both safe")
    return (f"not writing the pass log {path}: {other} holds the same log "
            f"({_ident(this, that)}), and records this one lacks or the same; writing on "
            f"would split it in two. Nothing was written; {move}, then run again")
