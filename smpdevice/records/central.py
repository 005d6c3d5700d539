"""A clinic chain's central store: every installation's pass log, in one PostgreSQL database.

`sync(log, url)` pushes the local chained records, append-only:
- idempotent: records the central store already holds are not sent again;
- resumable: records go in batches, each committed with the log's new head, so a cut
  connection loses at most the batch in flight and the next sync carries on from there;
- many PCs and pens: each log is registered under its `log_id` with its installation's public
  key on first sync; a log never changes installation.

The database itself refuses what would rewrite history, whoever connects: triggers make
`smp_records` append-only (no UPDATE, DELETE or TRUNCATE) and accept a record only if it
continues its log's chain (next number, `prev_hash` = the head, its SHA-256 recomputed in SQL).
Before sending, `sync` compares the local log with the central copy and refuses a rewritten or
forked local log, naming the first record where they differ. Signatures cannot be checked in
SQL (PostgreSQL has no Ed25519): the client checks them with this installation's key before it
syncs, and `compare` checks the central heads against the registered key.

A batch ends, where it can, at a head this key signed, and commits that head (in
`smp_signed_heads`, and as `smp_logs.head_signature`) with its records: the head's signature
moves with the head (NULL while a cut sync left the head at a record nobody signed yet), so a
cut sync never leaves an old head's signature beside a new head. Two syncs of one log at once
both succeed: the one whose records are already there carries on from the head the other left.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from smpdevice.records.audit import StoredHead
from smpdevice.records.central_compare import (
    Comparison,
    altered,
    central_fault,
    central_head,
    compare,
    first_divergence,
    installation_logs,
    local_hashes,
    unsigned_from,
)
from smpdevice.records.central_connect import (
    CentralRefused,
    CentralStoreError,
    NoLogId,
    _safe,
    _why,
    connect,
)
from smpdevice.records.chain import ChainRecord
from smpdevice.records.keys import InstallationKey, PublicKey

BATCH_RECORDS = 5000
RIGHTS = ("SELECT and INSERT on smp_installations, smp_logs, smp_records and "
          "smp_signed_heads, and UPDATE on smp_logs")


@dataclass(frozen=True)
class SyncResult:
    log_id: str
    sent: int  # records sent by this sync
    central_head: int  # the central store's head after it
    registered: bool  # this log (and maybe its key) was registered by this sync


def sync(log: Any, url: str, key: InstallationKey | PublicKey, *,
         batch_records: int = BATCH_RECORDS,
         on_batch: Callable[[int], None] | None = None) -> SyncResult:
    """Push `log`'s records not yet in the central store (see the module's docstring).

    The log must verify against `key` (this installation's key, or its public half) first,
    with its anchors file, as `smp sessions verify` checks it; only the records it verified
    are sent. A damaged file raises PassLogError. `on_batch(sent_so_far)` is called after each
    committed batch (progress).
    """
    import psycopg

    public = key.public if isinstance(key, InstallationKey) else key
    if not log.log_id:  # being created: an id made up now would stay in the store for ever
        raise NoLogId(f"the log {log.path} has no log id yet (it is being created, or its "
                      "creation was cut): nothing to sync; sync again after its first session")
    # Checked as `smp sessions verify` checks it: the file sound, and the anchors file beside
    # it, which catches a log replaced by an older copy of itself (a rollback the central
    # store must never take as the truth).
    log.check_storage()
    audit = log.audit(trusted={public.fingerprint: public}, anchors=True)
    if not audit.ok:
        raise CentralRefused(f"the local log does not verify ({audit.problem}); nothing "
                             "was sent. Run `smp sessions verify` for details")
    log_id = log.log_id
    signed = _signed_by(log, public, audit.count)
    conn = connect(url)
    try:
        registered = _register(conn, log_id, public)
        sent = 0
        while True:
            central_seq, central_hash = _central_head(conn, log_id)
            _require_same_history(conn, log, log_id, central_seq, central_hash, audit.count)
            try:
                for count in _batches(conn, log, log_id, central_seq, audit, signed,
                                      batch_records):
                    sent += count
                    if on_batch:
                        on_batch(sent)
                break
            except psycopg.errors.UniqueViolation:
                # Another sync of this log (a cron job's and a technician's at once) committed
                # these records first: carry on from the head it left. A head that did not
                # move is not that race: reported as the error it is.
                if _central_head(conn, log_id)[0] <= central_seq:
                    raise
            except psycopg.errors.IntegrityConstraintViolation:
                _refuse_altered(conn, log_id)  # a record the chain check found missing
                raise
        with conn.transaction():
            _send_heads(conn, log, log_id)
        return SyncResult(log_id, sent, _central_head(conn, log_id)[0], registered)
    except psycopg.errors.InsufficientPrivilege as exc:
        if not str(exc).startswith("smp:"):  # our triggers' refusals use that code too
            why = _why(exc, url)
            raise CentralStoreError(f"the sync to {_safe(url)} was refused ({why}): "
                                    f"{_missing_right(why)} (docs/integration.md)") from None
        raise CentralStoreError(f"the sync to {_safe(url)} stopped ({_why(exc, url)}); what "
                                "was committed is kept") from None
    except psycopg.Error as exc:
        raise CentralStoreError(f"the sync to {_safe(url)} stopped ({_why(exc, url)}); "
                                "what was committed is kept: run the sync again to carry "
                                "on") from None
    finally:
        conn.close()


def _missing_right(denial: str) -> str:
    """What a "permission denied for KIND NAME" says the role lacks: the table rights a PC
    syncs with only for a table; else the right on the very object the server names (EXECUTE
    on a function the triggers call, revoked from PUBLIC, say), never a list it already has."""
    found = re.search(r"permission denied for (\w+) (\S+)", denial)
    kind, name = found.groups() if found else ("", "")
    if kind == "table" or not found:
        return f"this role lacks the rights a PC syncs with: {RIGHTS}"
    if kind in ("function", "procedure"):
        return (f"this role may not run {kind} {name}, which the store's triggers call: grant "
                f"it EXECUTE on {kind} {name}")
    if kind == "schema":
        return f"this role may not use schema {name}: grant it USAGE on schema {name}"
    return f"this role lacks a right on {kind} {name}"


def _refuse_altered(conn: Any, log_id: str) -> None:
    """Refuse (exit 1) a central log whose records were altered behind its triggers: a
    record refused as not continuing its chain, by a store whose head is not its last
    record, is that, not a cut connection."""
    head_seq, head_hash = _central_head(conn, log_id)
    fault = central_fault(conn, log_id, head_seq, head_hash)
    if fault is not None:
        raise CentralRefused(altered(log_id, fault) + "; nothing more was sent. Check with "
                             "`smp sessions verify --against URL`")


def _central_head(conn: Any, log_id: str) -> tuple[int, str]:
    seq, digest = conn.execute("SELECT head_seq, head_hash FROM smp_logs WHERE log_id = %s",
                               (log_id,)).fetchone()
    return int(seq), str(digest)


def _signed_by(log: Any, public: PublicKey, upto: int) -> dict[int, StoredHead]:
    """The heads of records 1..`upto` that `public` signed, by record (the permanent ones and
    the chain head): where a batch can end, carrying its signature with it."""
    heads = [*log.signed_heads(), log.current_head()]
    return {h.seq: h for h in heads if h is not None and h.signature and h.seq <= upto
            and h.key_fingerprint == public.fingerprint}


def _batches(conn: Any, log: Any, log_id: str, after: int, audit: Any,
             signed: Mapping[int, StoredHead], batch_records: int) -> Iterator[int]:
    """Send the records after `after` up to the audited head in committed batches, yielding
    each batch's size once committed. A full batch is cut after the last record in it whose
    head this key signed (if any): a cut sync then leaves a signed head."""
    pending: list[ChainRecord] = []
    records = log.records(after_seq=after)
    try:
        for record in records:
            if record.seq > audit.count:  # written after the audit: the next sync sends it
                break
            if record.seq == audit.count and record.hash != audit.head_hash:
                raise CentralRefused(f"record {record.seq} of the local log changed while it "
                                     "was synced (it is not the record verified): nothing more "
                                     "was sent. Run `smp sessions verify`")
            pending.append(record)
            if len(pending) >= batch_records:
                ends = [i for i, r in enumerate(pending) if _signs(signed, r)]
                cut = ends[-1] + 1 if ends else len(pending)
                yield _send(conn, log_id, pending[:cut], signed)
                pending = pending[cut:]
    finally:
        records.close()
    if pending:
        yield _send(conn, log_id, pending, signed)


def _signs(signed: Mapping[int, StoredHead], record: ChainRecord) -> bool:
    head = signed.get(record.seq)
    return head is not None and head.hash == record.hash


def _register(conn: Any, log_id: str, key: InstallationKey | PublicKey) -> bool:
    key = key.public if isinstance(key, InstallationKey) else key
    with conn.transaction():
        row = conn.execute("SELECT public_key FROM smp_installations WHERE key_fingerprint = %s",
                           (key.fingerprint,)).fetchone()
        if row is not None and row[0] != key.hex:
            raise CentralRefused(f"the central store has another public key under "
                                 f"fingerprint {key.fingerprint}; refusing to sync")
        new_key = row is None
        if new_key:
            conn.execute("INSERT INTO smp_installations (key_fingerprint, public_key) "
                         "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (key.fingerprint, key.hex))
        owner = conn.execute("SELECT key_fingerprint FROM smp_logs WHERE log_id = %s",
                             (log_id,)).fetchone()
        if owner is None:
            conn.execute("INSERT INTO smp_logs (log_id, key_fingerprint) VALUES (%s, %s) "
                         "ON CONFLICT DO NOTHING", (log_id, key.fingerprint))
            return True
        if owner[0] != key.fingerprint:
            raise CentralRefused(
                f"log {log_id} is registered in the central store to the installation key "
                f"{owner[0]}, not this installation's {key.fingerprint}: a copied log, or a "
                "new key; refusing to sync")
        return new_key


def _require_same_history(conn: Any, log: Any, log_id: str, central_seq: int,
                          central_hash: str, local_count: int) -> None:
    """Refuse a local log that is not a continuation of what the central store holds, saying
    which side it is: records the registered key signed, or records nobody signed."""
    if central_seq == 0:
        return
    # The local log holds the central head (re-read: a record beyond what this sync audited,
    # sent by another sync of this log while the pen wrote it, is there now), and the central
    # records up to what was audited are the local ones: nothing to refuse.
    if dict(local_hashes(log, central_seq, central_seq)).get(central_seq) == central_hash and (
            local_count >= central_seq
            or first_divergence(conn, log, log_id, local_count) is None):
        return
    head = central_head(conn, log_id)
    assert head is not None  # registered by this sync
    _refuse_altered(conn, log_id)
    first = first_divergence(conn, log, log_id, min(central_seq, local_count))
    unsigned = unsigned_from(conn, head, first if first is not None else local_count + 1)
    if unsigned is not None and unsigned == (first or unsigned):
        raise CentralRefused(
            f"records {unsigned}..{head.seq} of log {log_id} in the central store are covered "
            "by no head this installation's key signed: they were added to the central store "
            "without it" + (f" (the local log's record {first} differs from them)"
                            if first is not None else f" (the local log ends at record "
                                                      f"{local_count})") +
            "; nothing was sent. Check with `smp sessions verify --against URL`")
    if first is None:  # the local log is a prefix: it was cut, or is an older copy
        raise CentralRefused(
            f"the local log ends at record {local_count} but the central store holds log "
            f"{log_id} up to record {central_seq}: records were removed locally or the log "
            "was replaced by an older copy; nothing was sent")
    raise CentralRefused(
        f"record {first} of the local log differs from the central store's record {first} "
        f"of log {log_id}: the local log was rewritten or forked; nothing was sent")


def _send(conn: Any, log_id: str, batch: list[ChainRecord],
          signed: Mapping[int, StoredHead]) -> int:
    """One committed batch: its records, the signed heads among them, and the log's head
    signature moved with its head (that of the batch's last record, or none yet)."""
    last = batch[-1]
    with conn.transaction():
        with conn.cursor() as cur, cur.copy(
                "COPY smp_records (log_id, seq, kind, session_id, pass_id, written_at, body, "
                "prev_hash, hash) FROM STDIN") as copy:
            for r in batch:
                copy.write_row((log_id, r.seq, r.kind, r.session_id, r.pass_id, r.written_at,
                                r.body, r.prev_hash, r.hash))
        for r in batch:
            if _signs(signed, r):
                _insert_head(conn, log_id, signed[r.seq])
        conn.execute("UPDATE smp_logs SET head_signature = %s WHERE log_id = %s "
                     "AND head_seq = %s AND head_hash = %s",
                     (signed[last.seq].signature if _signs(signed, last) else None, log_id,
                      last.seq, last.hash))
    return len(batch)


def _insert_head(conn: Any, log_id: str, h: StoredHead) -> None:
    conn.execute("INSERT INTO smp_signed_heads (log_id, seq, hash, reason, key_fingerprint, "
                 "signature) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                 (log_id, h.seq, h.hash, h.reason, h.key_fingerprint, h.signature))


def _send_heads(conn: Any, log: Any, log_id: str) -> None:
    head, digest = _central_head(conn, log_id)
    for h in log.signed_heads():
        if h.seq <= head:
            _insert_head(conn, log_id, h)
    current = log.current_head()
    if current is not None and current.signature and (current.seq, current.hash) == (head,
                                                                                      digest):
        _insert_head(conn, log_id, current)  # kept: the head signature may move on
        conn.execute("UPDATE smp_logs SET head_signature = %s WHERE log_id = %s "
                     "AND head_seq = %s AND head_hash = %s",
                     (current.signature, log_id, head, digest))


__all__ = ["BATCH_RECORDS", "CentralRefused", "CentralStoreError", "Comparison", "NoLogId",
           "SyncResult", "compare", "connect", "first_divergence", "installation_logs", "sync"]
