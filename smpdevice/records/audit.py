"""Verify a pass log completely: chain, head, signatures, anchors and receipts. No I/O.

A backend hands over what it stores (`AuditInput`); `audit()` returns the first problem, named
by record, and what was checked. The order of the checks is the order of the questions an
auditor asks: is every record intact and linked; does the log end where its head says; is every
record covered by a head signed by a trusted key; does the log still hold every head that was
anchored outside it (the anchors file, receipts, the central store).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smpdevice.records.chain import BrokenLink, ChainWalk, verify_chain
from smpdevice.records.keys import PublicKey
from smpdevice.records.signing import Receipt, head_statement


@dataclass(frozen=True)
class StoredHead:
    """A signed head as a backend stores it."""

    seq: int
    hash: str
    key_fingerprint: str | None
    signature: str | None
    reason: str = "head"


@dataclass
class AuditInput:
    records: Iterable[Any]  # ChainRecords or tuples in ChainRecord field order
    log_id: str
    chain_head: StoredHead | None  # the single, current head; None when missing
    signed_heads: Sequence[StoredHead]
    log_keys: Mapping[str, PublicKey]  # fingerprint -> key, as recorded in the log (untrusted)
    trusted: Mapping[str, PublicKey] | None  # None: check against the log's own keys only
    # Keys named by fingerprint alone (`verify --key`): trusted where the log records them.
    trusted_fingerprints: Collection[str] = ()
    anchors: Sequence[tuple[str, Receipt]] = ()  # (where it came from, receipt)
    signed: bool = True  # False for a log written before heads were signed
    has_head: bool = True  # False for schema 1, which had no chain head (its end unchecked)
    # A backend's faster walk of the same records (`chain.verify_rows`), given `keep`.
    walk: Callable[[Collection[int]], ChainWalk] | None = None
    # The whole anchors file that was read (None: none, or only receipts given): every
    # session close the log signed must then have its receipt among `anchored`.
    anchors_file: str | None = None
    anchored: Collection[int] = ()  # the record numbers the anchors file holds
    # The newest close, its receipt still being appended by a writer that held the anchors
    # file throughout the wait (`being_written`): not required of the file.
    pending_close: int | None = None


@dataclass
class Audit:
    problem: BrokenLink | None = None
    count: int = 0
    head_hash: str = ""
    signatures_checked: int = 0
    anchors_checked: int = 0
    key_trusted: bool = False
    key_fingerprints: list[str] = field(default_factory=list)
    unrecorded_keys: list[str] = field(default_factory=list)  # named, but not in the log
    pending_close: int | None = None  # a close whose receipt its writer is still appending
    signed: bool = True  # False: the plain chain only (a log written before heads were signed)
    has_head: bool = True  # False: schema 1, no chain head to check its end against
    # (kind, session id) of the records the heads and receipts name (from the walk)
    kept_records: dict[int, tuple[str, str]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.problem is None


def audit(data: AuditInput) -> Audit:
    keep = {h.seq for h in data.signed_heads} | {r.seq for _, r in data.anchors}
    walk = data.walk(keep) if data.walk else verify_chain(data.records, keep=keep)
    trusting = data.trusted is not None or bool(data.trusted_fingerprints)
    result = Audit(count=walk.count, head_hash=walk.head_hash, key_trusted=trusting,
                   kept_records=walk.kept_records, signed=data.signed,
                   has_head=data.has_head)
    # A key is known by the fingerprint of its own bytes, never by the label stored beside it:
    # a log may carry an attacker's key labelled with the installation's fingerprint.
    recorded = {key.fingerprint: key for key in data.log_keys.values()}
    keys = dict(data.trusted or {}) if trusting else recorded
    for fpr in data.trusted_fingerprints:
        if fpr in recorded:
            keys[fpr] = recorded[fpr]
        elif fpr not in keys:
            result.unrecorded_keys.append(fpr)
    result.key_fingerprints = sorted(keys)
    if walk.broken is not None:
        result.problem = walk.broken
        return result
    count, checks = walk.count, (_head, _signed_heads, _keys_recorded, _anchors,
                                 _closes_anchored)
    for check in checks:
        problem = check(data, walk.kept, count, walk.head_hash, keys, result)
        if problem is not None:
            result.problem = problem
            return result
    return result


def _valid(keys: Mapping[str, PublicKey], head: StoredHead, log_id: str,
           trusting: bool) -> str | None:
    """Why `head`'s signature is not valid, or None when it is."""
    if not head.signature or not head.key_fingerprint:
        return "is not signed"
    key = keys.get(head.key_fingerprint)
    if key is None:
        return (f"is signed by key {head.key_fingerprint}, which is not "
                + ("a trusted key" if trusting else "recorded in the log"))
    if not key.verify(head.signature, head_statement(log_id, head.seq, head.hash)):
        return ("has a signature that does not verify (rewritten without the installation "
                "key)")
    return None


def _head(data: AuditInput, kept: dict[int, str], count: int, last_hash: str,
          keys: Mapping[str, PublicKey], result: Audit) -> BrokenLink | None:
    head = data.chain_head
    if head is None:
        if (count or data.signed_heads) and data.has_head:
            return BrokenLink(count, "the chain head is missing (its table was dropped or its "
                                     "row deleted): the end of the log cannot be trusted")
        return None
    if head.seq > count:
        return BrokenLink(head.seq, f"the chain ends at record {count} but its head says "
                                    f"record {head.seq}: records were removed from the end")
    if head.seq < count:
        return BrokenLink(head.seq + 1, f"records {head.seq + 1}..{count} were added after the "
                                        f"head (record {head.seq}) without the installation "
                                        "key: they are not covered by a valid signature")
    if head.hash != last_hash:
        return BrokenLink(count, "the last record is not the one its head names: the end of "
                                 "the log was rewritten")
    if not data.signed:
        return None
    trusting = result.key_trusted
    why = _valid(keys, head, data.log_id, trusting) if count else None
    if why is not None:
        covered = max((h.seq for h in data.signed_heads
                       if h.seq <= count and _valid(keys, h, data.log_id, trusting) is None),
                      default=0)
        if covered >= count:  # every record is under a valid signed head: the head's row
            return BrokenLink(count, f"the chain head (record {count}) {why}, though the "
                                     f"signed head at record {covered} holds: the chain "
                                     "head's row was rewritten without the installation key")
        return BrokenLink(covered + 1, f"not covered by a valid signature: the chain head "
                                       f"(record {count}) {why}")
    result.signatures_checked += 1 if count else 0
    return None


def _signed_heads(data: AuditInput, kept: dict[int, str], count: int, last_hash: str,
                  keys: Mapping[str, PublicKey], result: Audit) -> BrokenLink | None:
    for head in sorted(data.signed_heads, key=lambda h: h.seq):
        if head.seq > count:
            return BrokenLink(head.seq, f"a signed head ({head.reason}) names record "
                                        f"{head.seq}, but the log ends at record {count}: "
                                        "records were removed")
        if kept.get(head.seq) != head.hash:
            return BrokenLink(head.seq, f"record {head.seq} is not the one its signed head "
                                        f"({head.reason}) names: the log was rewritten")
        why = _valid(keys, head, data.log_id, result.key_trusted)
        if why is not None:
            return BrokenLink(head.seq, f"the signed head at record {head.seq} "
                                        f"({head.reason}) {why}")
        result.signatures_checked += 1
    return None


def _keys_recorded(data: AuditInput, kept: dict[int, str], count: int, last_hash: str,
                   keys: Mapping[str, PublicKey], result: Audit) -> BrokenLink | None:
    """Each key that signed a head is recorded in the log (a writer records its key before
    it signs): a writer refuses a log whose head's key it does not find there, so verify
    names it too, also when the key it trusts is given from outside the log (review 18)."""
    if not data.signed:
        return None
    recorded = {key.fingerprint for key in data.log_keys.values()}
    heads = sorted(data.signed_heads, key=lambda h: h.seq)
    for head in [*heads, *([data.chain_head] if data.chain_head and count else [])]:
        if head.key_fingerprint and head.key_fingerprint not in recorded:
            what = ("the chain head" if head is data.chain_head
                    else f"the signed head at record {head.seq} ({head.reason})")
            return BrokenLink(head.seq, (
                f"{what} is signed by key {head.key_fingerprint}, which the log does not "
                f"record ({len(recorded)} key{'' if len(recorded) == 1 else 's'} in its "
                "signing_keys): its keys were removed or replaced without smpdevice, and no "
                "writer records in it until it is restored from a backup"))
    return None


def _anchors(data: AuditInput, kept: dict[int, str], count: int, last_hash: str,
             keys: Mapping[str, PublicKey], result: Audit) -> BrokenLink | None:
    records = result.kept_records
    for source, receipt in data.anchors:
        what = f"the receipt of session {receipt.session_id} ({source}, record {receipt.seq})"
        if receipt.seq > count:
            return BrokenLink(receipt.seq, f"{what} is missing from the log, which ends at "
                                           f"record {count}: records were removed, the log "
                                           "emptied or replaced by an older copy")
        if kept.get(receipt.seq) != receipt.head_hash:
            return BrokenLink(receipt.seq, f"record {receipt.seq} differs from {what}: the "
                                           "log was rewritten or replaced")
        held = records.get(receipt.seq)
        if held != ("session_close", receipt.session_id):  # the signature does not cover it
            named = f"the {held[0]} of session {held[1]}" if held else "no record"
            return BrokenLink(receipt.seq, f"{what}: record {receipt.seq} is {named}, not "
                                           "that session's close: the receipt was altered or "
                                           "belongs to another session")
        statement = head_statement(data.log_id, receipt.seq, receipt.head_hash)
        if not any(key.verify(receipt.signature, statement) for key in keys.values()):
            return BrokenLink(receipt.seq, f"{what} is not signed by "
                                           f"{'a trusted key' if result.key_trusted else 'a key'} "
                                           "for this log (another log's, or forged)")
        result.anchors_checked += 1
    return None


def _closes_anchored(data: AuditInput, kept: dict[int, str], count: int, last_hash: str,
                     keys: Mapping[str, PublicKey], result: Audit) -> BrokenLink | None:
    """Each signed session close appended its receipt to the anchors file: an anchors file
    that lost lines (emptied, cut, an older copy) no longer vouches for the log."""
    if data.anchors_file is None:
        return None
    anchored = set(data.anchored)
    closes = sorted(h.seq for h in data.signed_heads if h.reason == "session_close")
    missing = [seq for seq in closes if seq not in anchored]
    if missing == [data.pending_close]:  # its writer is still appending it: said, not required
        result.pending_close = data.pending_close
        return None
    if not missing:
        return None
    return BrokenLink(missing[0], (
        f"the session close at record {missing[0]} is signed in the log, but its receipt is "
        f"not in the anchors file {data.anchors_file} ({len(missing)} of {len(closes)} "
        "closes missing): the file was emptied, cut or replaced by an older copy. Restore it "
        "from a backup, or check without it (--no-anchors) against the receipts clients kept "
        "(--receipt)"))


def being_written(heads: Sequence[StoredHead], anchored: Collection[int], last: int
                  ) -> int | None:
    """The one close whose receipt a writer, holding the anchors file through a whole
    ANCHORS_WAIT_S, may still be appending: the newest close, when it is the snapshot's last
    record and every older close has its receipt. None: no such close."""
    closes = sorted(h.seq for h in heads if h.reason == "session_close")
    missing = [seq for seq in closes if seq not in anchored]
    return missing[0] if missing == [last] == closes[-1:] else None
