"""The hash chain of the pass log, as pure functions over records. No I/O.

Every final event is one `ChainRecord` (`session_open`, `pass_begin`, `pass_end`,
`session_close`). Each carries `prev_hash` (the hash of the record before it) and its own
`hash`, SHA-256 over its canonical contents including `prev_hash` (`record_hash`). Editing a
record breaks its hash; deleting one leaves a gap in `seq` and a `prev_hash` that no longer
matches. `verify_chain` walks any sequence of records, whatever stores them, and names the first
one that does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

GENESIS_HASH = "0" * 64
RECORD_KINDS = ("session_open", "pass_begin", "pass_end", "session_close", "session_resume")


def record_hash(seq: int, kind: str, session_id: str, pass_id: str | None, written_at: str,
                body: str, prev_hash: str) -> str:
    """SHA-256 (hex) of one record, including the previous record's hash.

    Fields are length-prefixed (`<len>:<text>,`), so no edit can move text from one field to
    the next and keep the hash; None (a session record's pass_id) is `-`.
    """
    number = str(seq)
    pid = "-" if pass_id is None else f"+{pass_id}"
    # One f-string (not a join over a tuple): verify calls this a million times.
    payload = (f"{len(number)}:{number},{len(kind)}:{kind},{len(session_id)}:{session_id},"
               f"{len(pid)}:{pid},{len(written_at)}:{written_at},{len(body)}:{body},"
               f"{len(prev_hash)}:{prev_hash},")
    return sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainRecord:
    """One chained record as stored: `body` is its canonical JSON text."""

    seq: int
    kind: str
    session_id: str
    pass_id: str | None
    written_at: str
    body: str
    prev_hash: str
    hash: str

    def describe(self) -> str:
        return _describe(self.kind, self.session_id, self.pass_id)

    def computed_hash(self) -> str:
        return record_hash(self.seq, self.kind, self.session_id, self.pass_id, self.written_at,
                           self.body, self.prev_hash)


@dataclass(frozen=True)
class BrokenLink:
    """The first record where the chain does not hold."""

    record_id: int
    problem: str

    def __str__(self) -> str:
        if not self.record_id:  # the log as a whole (its schema, its anchors file)
            return self.problem
        return f"record {self.record_id}: {self.problem}"


@dataclass
class ChainWalk:
    """Where a walk over the chain ended: the last good record, or the first broken link."""

    count: int = 0
    head_hash: str = GENESIS_HASH
    broken: BrokenLink | None = None
    kept: dict[int, str] = field(default_factory=dict)  # hashes at the `keep` record numbers
    # (kind, session id) of the records at the `keep` numbers: what a receipt must name
    kept_records: dict[int, tuple[str, str]] = field(default_factory=dict)


def verify_chain(records: Iterable[ChainRecord | tuple[Any, ...]], *, start_seq: int = 1,
                 start_hash: str = GENESIS_HASH, keep: Collection[int] = ()) -> ChainWalk:
    """Walk `records` in order; stop at the first that does not link or was altered.

    `start_seq`/`start_hash` continue a walk from an earlier verified point; the hashes at the
    record numbers in `keep` are returned in `kept`. Records may be plain tuples in
    `ChainRecord` field order (a backend's rows, without building objects).
    """
    rows = ((r.seq, r.kind, r.session_id, r.pass_id, r.written_at, r.body, r.prev_hash, r.hash)
            if isinstance(r, ChainRecord) else r for r in records)
    return verify_rows(rows, start_seq=start_seq, start_hash=start_hash, keep=keep)


def verify_rows(rows: Iterable[tuple[Any, ...]], *, start_seq: int = 1,
                start_hash: str = GENESIS_HASH, keep: Collection[int] = (),
                describe: Callable[[int], str] | None = None) -> ChainWalk:
    """`verify_chain` over plain rows in `ChainRecord` field order, as fast as Python goes: a
    million records are verified by this loop, so `record_hash`'s payload is built inline
    (no call, no object per record; tests check it hashes exactly the same text).
    `describe(seq)` names a record in a problem (default: from the row itself)."""
    walk = ChainWalk(count=start_seq - 1, head_hash=start_hash)
    expected, head = start_seq, start_hash
    keep = frozenset(keep)
    hasher = sha256
    for seq, kind, sid, pid, at, body, prev_hash, stored in rows:
        number = str(seq)
        tag = "-" if pid is None else f"+{pid}"
        if seq == expected and prev_hash == head and hasher(
                f"{len(number)}:{number},{len(kind)}:{kind},{len(sid)}:{sid},{len(tag)}:{tag},"
                f"{len(at)}:{at},{len(body)}:{body},{len(prev_hash)}:{prev_hash},"
                .encode()).hexdigest() == stored:
            head, expected = stored, seq + 1  # the common case: one test, no bookkeeping
            if seq in keep:
                walk.kept[seq] = stored
                walk.kept_records[seq] = (kind, sid)
            continue
        walk.count, walk.head_hash = expected - 1, head
        what = describe(seq) if describe is not None else _describe(kind, sid, pid)
        if seq != expected:
            walk.broken = _missing(expected, seq)
        elif prev_hash != head:
            walk.broken = BrokenLink(seq, f"({what}) does not link to record {seq - 1}: its "
                                          "prev_hash is not that record's hash")
        else:
            walk.broken = BrokenLink(seq, f"({what}) was altered: its contents do not match "
                                          "its hash")
        return walk
    walk.count, walk.head_hash = expected - 1, head
    return walk


def _missing(expected: int, seq: int) -> BrokenLink:
    gone = (f"record {expected} is" if seq == expected + 1
            else f"records {expected}..{seq - 1} are")
    return BrokenLink(seq, f"{gone} missing (deleted): the chain jumps from record "
                           f"{expected - 1} to record {seq}")


def _describe(kind: str, session_id: str, pass_id: str | None) -> str:
    return f"{kind} of {f'pass {pass_id}' if pass_id else f'session {session_id}'}"
