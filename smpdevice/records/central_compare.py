"""The central store against a local log: `smp sessions verify --against` (`compare`) and the
logs a data directory must still hold (`installation_logs`).

Records the central store holds that the local log holds too are checked by hash (the local
log was verified first, so those are this installation's). Records beyond the local log are
this installation's only if a head its registered key signed covers them: a record appended
to the store by anyone with the PCs' rights, whose signature cannot be checked in SQL, is
named as such, not blamed on the local log. The signature stored with the head must be that
key's, of the head or of an earlier head the store keeps (a sync cut mid-way leaves one).
Likewise a log is this installation's to miss (`installation_logs`) only if a head its
registered key signed covers it: anyone with those rights can register a log under the key's
public fingerprint (`unclaimed_logs` names those).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from smpdevice.records.central_connect import CentralStoreError, _safe, _why, connect
from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.keys import PublicKey
from smpdevice.records.signing import head_statement

# The central records of a log up to a number, in order, as the chain hashes them. Their
# hashes are recomputed here, in Python, with the chain's own `record_hash` (as local verify
# does): never by a function the store holds, which the tables' owner, who can disable the
# triggers, can also replace (`SELECT r.hash`) to make an edited record look sound (review
# 16b). Read in chunks through a server-side cursor: a large log is never held whole.
_CENTRAL_ROWS = ("SELECT seq, kind, session_id, pass_id, written_at, body, prev_hash, hash "
                 "FROM smp_records WHERE log_id = %s AND seq <= %s ORDER BY seq")
_CHUNK_ROWS = 5000


def central_fault(conn: Any, log_id: str, upto: int, head_hash: str | None = None
                  ) -> tuple[int, str] | None:
    """(first record, what is wrong with it) among the central records 1..`upto` of `log_id`,
    or None when they are all there, each matching its hash and linking to the one before it
    (and record `upto`'s hash is `head_hash`, when given). The triggers refuse all three, but
    the tables' owner can disable them: `compare` and `sync` do not take the store's word for
    its records (nor for its hash function)."""
    if upto <= 0:
        return None
    gap = unsound = unlinked = None
    count, last, previous = 0, None, GENESIS_HASH
    with conn.transaction(), conn.cursor(name="smp_central_rows") as cur:
        cur.itersize = _CHUNK_ROWS
        cur.execute(_CENTRAL_ROWS, (log_id, upto))
        for seq, kind, sid, pid, at, body, prev_hash, stored in cur:
            count += 1
            if gap is None and seq != count:
                gap = count
            if unsound is None and record_hash(seq, kind, sid, pid, at, body,
                                               prev_hash) != stored:
                unsound = seq
            if unlinked is None and prev_hash != previous:
                unlinked = seq
            previous = stored
            if seq == upto:
                last = stored
    found = []
    if gap is not None or count < upto:
        found.append((gap if gap is not None else count + 1, "is missing"))
    if unsound is not None:
        found.append((int(unsound), "does not match its own hash (its content was edited)"))
    if unlinked is not None:
        found.append((int(unlinked), "does not continue the chain of the record before it"))
    if not found and head_hash is not None and last != head_hash:
        found.append((upto, "is not the head the store names for the log"))
    return min(found) if found else None


def altered(log_id: str, fault: tuple[int, str]) -> str:
    """The problem line for a central record that was altered behind the triggers."""
    seq, what = fault
    return (f"record {seq} of log {log_id} in the central store {what}: the central store was "
            "altered behind its triggers (by a role that can disable them)")


def first_divergence(conn: Any, log: Any, log_id: str, upto: int) -> int | None:
    """The first record number <= `upto` whose hash differs locally and centrally."""
    central = conn.execute("SELECT seq, hash FROM smp_records WHERE log_id = %s AND seq <= %s "
                           "ORDER BY seq", (log_id, upto))
    local = local_hashes(log, 1, upto)
    expected = 0
    for expected, (c_seq, c_hash) in enumerate(central, start=1):
        l_seq, l_hash = next(local, (upto + 1, ""))
        if c_seq != expected or l_seq != expected or c_hash != l_hash:
            return expected  # a gap on either side is a difference too
    last = next(local, None)
    return expected + 1 if expected < upto and last is not None else None


def local_hashes(log: Any, first: int, last: int) -> Iterator[tuple[int, str]]:
    for record in log.records(after_seq=first - 1):
        if record.seq > last:
            return
        yield record.seq, record.hash


@dataclass(frozen=True)
class Comparison:
    problem: str | None
    local_count: int
    central_count: int


@dataclass(frozen=True)
class CentralHead:
    """A log's head in the central store, the signature stored with it, and its key."""

    log_id: str
    seq: int
    hash: str
    signature: str | None
    key: PublicKey  # the installation key registered for the log


def central_head(conn: Any, log_id: str) -> CentralHead | None:
    row = conn.execute("SELECT l.head_seq, l.head_hash, l.head_signature, i.public_key "
                       "FROM smp_logs l JOIN smp_installations i USING (key_fingerprint) "
                       "WHERE l.log_id = %s", (log_id,)).fetchone()
    if row is None:
        return None
    seq, digest, signature, public = row
    return CentralHead(log_id, int(seq), str(digest), signature, PublicKey(public))


def unsigned_from(conn: Any, head: CentralHead, start: int) -> int | None:
    """The first central record from `start` on that no head its registered key signed
    covers, or None when the head itself is covered. The database cannot check signatures:
    records appended by anyone with the PCs' INSERT right are told apart here."""
    covered = _covered_upto(conn, head)
    return None if covered >= head.seq else max(covered + 1, start)


def compare(log: Any, url: str) -> Comparison:
    """`smp sessions verify --against`: does the local log hold what the central store holds,
    is every central record this installation's (the local record itself, or covered by a
    head its registered key signed), and is the signature stored with the head its key's?"""
    import psycopg

    conn = connect(url)
    try:
        head = central_head(conn, log.log_id)
        local_count = log.head()[0]
        if head is None:
            return Comparison(f"log {log.log_id} is not in the central store: sync it first "
                              "(smp sessions sync --to URL)", local_count, 0)
        return Comparison(_central_problem(conn, log, head, local_count), local_count,
                          head.seq)
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot read the central store {_safe(url)}: "
                                f"{_why(exc, url)}") from None
    finally:
        conn.close()


def _central_problem(conn: Any, log: Any, head: CentralHead, local_count: int) -> str | None:
    fault = central_fault(conn, head.log_id, head.seq, head.hash)
    first = first_divergence(conn, log, head.log_id, min(head.seq, local_count))
    if fault is not None and (first is None or fault[0] <= first):
        return altered(head.log_id, fault)
    if fault is not None and first is not None:  # rewritten whole, the next one's link broken
        return altered(head.log_id, (first, f"differs from the local one (and record "
                                            f"{fault[0]} {fault[1]})"))
    if first is not None:
        if unsigned_from(conn, head, first) == first:  # the central side is nobody's
            return (f"record {first}: the local log differs from the central store, whose "
                    f"records {first}..{head.seq} are covered by no head its registered key "
                    "signed (added to the store without this installation's key, or sent by "
                    "a sync cut before a signed head and the local log rewritten since)")
        return f"record {first}: the local log differs from the central store (rewritten or forked)"
    unsigned = unsigned_from(conn, head, local_count + 1) if head.seq > local_count else None
    if unsigned is not None:  # records the local log does not hold, and no signature covers
        return (f"the central head of log {head.log_id} (record {head.seq}) is not signed by "
                f"its registered key: records {unsigned}..{head.seq} of the central store are "
                "covered by no head that key signed, and the local log does not hold them: "
                "they were added to the central store without this installation's key")
    if head.signature and not _signs_a_head(conn, head):
        return (f"the central head of log {head.log_id} (record {head.seq}) is not signed by "
                "its registered key: the signature stored with it is no head's that key signed "
                "(set without the key; a cut sync of an smpdevice before session 12 leaves "
                "one too: `smp sessions sync` replaces it)")
    if local_count < head.seq:
        return (f"record {local_count + 1}: missing locally; the central store holds log "
                f"{head.log_id} up to record {head.seq} (records removed or the log replaced "
                "by an older copy)")
    return None


# The signed heads the store keeps for a log whose record it holds as signed.
_KEPT_HEADS = ("SELECT h.seq, h.hash, h.signature FROM smp_signed_heads h JOIN smp_records r "
               "ON r.log_id = h.log_id AND r.seq = h.seq AND r.hash = h.hash "
               "WHERE h.log_id = %s")


def _covered_upto(conn: Any, head: CentralHead) -> int:
    """The last central record covered by a head the registered key signed (0: none): the
    head itself, else the newest signed head the store keeps."""
    if head.signature and head.key.verify(head.signature, head_statement(head.log_id, head.seq,
                                                                         head.hash)):
        return head.seq
    for seq, digest, signature in conn.execute(_KEPT_HEADS + " ORDER BY h.seq DESC",
                                               (head.log_id,)):
        if head.key.verify(signature, head_statement(head.log_id, seq, digest)):
            return int(seq)
    return 0


def _signs_a_head(conn: Any, head: CentralHead) -> bool:
    """Whether the signature stored with the head is its key's, of the head or of an earlier
    head the store keeps (left by a sync cut before the new head was signed)."""
    assert head.signature is not None
    if head.key.verify(head.signature, head_statement(head.log_id, head.seq, head.hash)):
        return True
    return any(head.key.verify(head.signature, head_statement(head.log_id, seq, digest))
               for seq, digest, _ in conn.execute(_KEPT_HEADS + " AND h.signature = %s",
                                                  (head.log_id, head.signature)))


@dataclass(frozen=True)
class RegisteredLog:
    """A log the central store holds under an installation key: its head, and the last record
    a head that key signed covers (0: none, so nothing of it is provably that installation's:
    registered by anyone with the PCs' INSERT right, who can name any key's fingerprint)."""

    log_id: str
    head_seq: int
    covered_seq: int


def registered_logs(url: str, fingerprints: Collection[str]) -> list[RegisteredLog]:
    """Every log the central store holds under these installation keys, by log_id, with how
    much of it a head the registered key signed covers."""
    import psycopg

    if not fingerprints:
        return []
    conn = connect(url)
    try:
        found = []
        for (log_id,) in conn.execute("SELECT log_id FROM smp_logs WHERE key_fingerprint = "
                                      "ANY(%s) ORDER BY log_id", (list(fingerprints),)).fetchall():
            head = central_head(conn, str(log_id))  # None: its key is not registered at all
            found.append(RegisteredLog(str(log_id), head.seq if head else 0,
                                       _covered_upto(conn, head) if head else 0))
        return found
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot read the central store {_safe(url)}: "
                                f"{_why(exc, url)}") from None
    finally:
        conn.close()


def installation_logs(url: str, fingerprints: Collection[str]) -> list[tuple[str, int]]:
    """(log_id, last record its key signed) of every log the central store holds under these
    installation keys that a head the key signed covers, by log_id: what a data directory
    synced to it must still hold. A log registered under the key that no signed head covers
    is not this installation's to miss (`unclaimed_logs` names those)."""
    return [(r.log_id, r.covered_seq) for r in registered_logs(url, fingerprints)
            if r.covered_seq > 0]


def unclaimed_logs(url: str, fingerprints: Collection[str],
                   here: Collection[str] = ()) -> list[str]:
    """A problem for each log registered under these keys that no head they signed covers
    (but those in `here`: `compare` checks a log that is here): added to the central store
    without the installation's key."""
    return [f"log {r.log_id} (records 1..{r.head_seq}) is registered in the central store "
            "under this installation's key, but no head that key signed covers any of it: it "
            "was added to the central store without this installation's key (not a log of "
            "this data directory)" for r in registered_logs(url, fingerprints)
            if r.covered_seq == 0 and r.log_id not in here]
