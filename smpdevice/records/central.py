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
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from smpdevice.errors import SmpError
from smpdevice.records import dsn
from smpdevice.records.central_schema import SCHEMA as _SCHEMA
from smpdevice.records.central_schema import SCHEMA_VERSION, is_current
from smpdevice.records.chain import ChainRecord
from smpdevice.records.keys import InstallationKey, PublicKey
from smpdevice.records.signing import head_statement

BATCH_RECORDS = 5000

class CentralStoreError(SmpError):
    """The central store cannot be reached, or refuses the local log."""


class NoLogId(CentralStoreError):
    """The log has no id yet (being created): it is never synced or registered."""


@dataclass(frozen=True)
class SyncResult:
    log_id: str
    sent: int  # records sent by this sync
    central_head: int  # the central store's head after it
    registered: bool  # this log (and maybe its key) was registered by this sync


def connect(url: str) -> Any:
    """A psycopg connection to `url` (postgresql://...), with the schema in place."""
    import psycopg

    if not url.startswith(("postgresql://", "postgres://")):
        raise CentralStoreError(f"--to/--against {_safe(url)!r} is not a PostgreSQL URL: give "
                                "postgresql://USER@HOST:PORT/DATABASE")
    try:
        # autocommit: each `with conn.transaction()` below is then a real, committed one.
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10,
                               application_name="smpdevice-sync")
        row = conn.execute("SHOW server_encoding").fetchone()
        encoding = str(row[0]) if row else "unknown"
        if encoding.upper() not in ("UTF8", "UTF-8"):
            raise CentralStoreError(f"the central database's encoding is {encoding}: it must "
                                    "be UTF8 (createdb -E UTF8)")
        if not is_current(conn):  # set up or migrate: needs the owner (the PCs' role reads)
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(7406)")  # one creator at once
                    if not is_current(conn):
                        conn.execute(_SCHEMA)
            except psycopg.errors.InsufficientPrivilege as exc:
                conn.close()
                raise CentralStoreError(
                    f"cannot use the central store {_safe(url)}: it is not set up for this "
                    f"smpdevice (schema {SCHEMA_VERSION}, every guard trigger) and this role "
                    f"may not set it up ({_why(exc, url)}): run one sync or verify as the "
                    "tables' owner first (docs/integration.md)") from None
        return conn
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot use the central store {_safe(url)}: "
                                f"{_why(exc, url)}; check the URL, the server and your "
                                "rights on the database") from None


def _safe(url: str) -> str:
    """The URL without its passwords (user part, ?password=, sslpassword=)."""
    return dsn.safe(url)


def _why(exc: BaseException, url: str) -> str:
    """The driver's message on one line, without any password of `url` it may quote."""
    return dsn.scrub(" ".join(str(exc).split()), url)


def sync(log: Any, url: str, key: InstallationKey, *, batch_records: int = BATCH_RECORDS,
         on_batch: Callable[[int], None] | None = None) -> SyncResult:
    """Push `log`'s records not yet in the central store (see the module's docstring).

    The log must verify against `key` first. `on_batch(sent_so_far)` is called after each
    committed batch (progress).
    """
    import psycopg

    if not log.log_id:  # being created: an id made up now would stay in the store for ever
        raise NoLogId(f"the log {log.path} has no log id yet (it is being created, or its "
                      "creation was cut): nothing to sync; sync again after its first session")
    audit = log.audit(trusted={key.fingerprint: key.public}, anchors=False)
    if not audit.ok:
        raise CentralStoreError(f"the local log does not verify ({audit.problem}); nothing "
                                "was sent. Run `smp sessions verify` for details")
    log_id = log.log_id
    conn = connect(url)
    try:
        registered = _register(conn, log_id, key)
        central_seq, central_hash = conn.execute(
            "SELECT head_seq, head_hash FROM smp_logs WHERE log_id = %s", (log_id,)).fetchone()
        _require_same_history(conn, log, log_id, central_seq, central_hash, audit.count)
        sent = 0
        batch: list[ChainRecord] = []
        for record in log.records(after_seq=central_seq):
            batch.append(record)
            if len(batch) >= batch_records:
                sent += _send(conn, log_id, batch)
                batch = []
                if on_batch:
                    on_batch(sent)
        if batch:
            sent += _send(conn, log_id, batch)
            if on_batch:
                on_batch(sent)
        with conn.transaction():
            _send_heads(conn, log, log_id)
        head = conn.execute("SELECT head_seq FROM smp_logs WHERE log_id = %s",
                            (log_id,)).fetchone()[0]
        return SyncResult(log_id, sent, head, registered)
    except psycopg.Error as exc:
        raise CentralStoreError(f"the sync to {_safe(url)} stopped ({_why(exc, url)}); "
                                "what was committed is kept: run the sync again to carry "
                                "on") from None
    finally:
        conn.close()


def _register(conn: Any, log_id: str, key: InstallationKey) -> bool:
    with conn.transaction():
        row = conn.execute("SELECT public_key FROM smp_installations WHERE key_fingerprint = %s",
                           (key.fingerprint,)).fetchone()
        if row is not None and row[0] != key.public.hex:
            raise CentralStoreError(f"the central store has another public key under "
                                    f"fingerprint {key.fingerprint}; refusing to sync")
        new_key = row is None
        if new_key:
            conn.execute("INSERT INTO smp_installations (key_fingerprint, public_key) "
                         "VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (key.fingerprint, key.public.hex))
        owner = conn.execute("SELECT key_fingerprint FROM smp_logs WHERE log_id = %s",
                             (log_id,)).fetchone()
        if owner is None:
            conn.execute("INSERT INTO smp_logs (log_id, key_fingerprint) VALUES (%s, %s) "
                         "ON CONFLICT DO NOTHING", (log_id, key.fingerprint))
            return True
        if owner[0] != key.fingerprint:
            raise CentralStoreError(
                f"log {log_id} is registered in the central store to the installation key "
                f"{owner[0]}, not this installation's {key.fingerprint}: a copied log, or a "
                "new key; refusing to sync")
        return new_key


def _require_same_history(conn: Any, log: Any, log_id: str, central_seq: int,
                          central_hash: str, local_count: int) -> None:
    """Refuse a local log that is not a continuation of what the central store holds."""
    if central_seq == 0:
        return
    if local_count >= central_seq:
        local = dict(_local_hashes(log, central_seq, central_seq))
        if local.get(central_seq) == central_hash:
            return
    first = first_divergence(conn, log, log_id, min(central_seq, local_count))
    if first is None:  # the local log is a prefix: it was cut, or is an older copy
        raise CentralStoreError(
            f"the local log ends at record {local_count} but the central store holds log "
            f"{log_id} up to record {central_seq}: records were removed locally or the log "
            "was replaced by an older copy; nothing was sent")
    raise CentralStoreError(
        f"record {first} of the local log differs from the central store's record {first} "
        f"of log {log_id}: the local log was rewritten or forked; nothing was sent")


def first_divergence(conn: Any, log: Any, log_id: str, upto: int) -> int | None:
    """The first record number <= `upto` whose hash differs locally and centrally."""
    central = conn.execute("SELECT seq, hash FROM smp_records WHERE log_id = %s AND seq <= %s "
                           "ORDER BY seq", (log_id, upto))
    local = _local_hashes(log, 1, upto)
    for (c_seq, c_hash), (l_seq, l_hash) in zip(central, local, strict=False):
        if c_seq != l_seq or c_hash != l_hash:
            return min(c_seq, l_seq)
    return None


def _local_hashes(log: Any, first: int, last: int) -> Iterator[tuple[int, str]]:
    for record in log.records(after_seq=first - 1):
        if record.seq > last:
            return
        yield record.seq, record.hash


def _send(conn: Any, log_id: str, batch: list[ChainRecord]) -> int:
    with conn.transaction(), conn.cursor() as cur, cur.copy(
            "COPY smp_records (log_id, seq, kind, session_id, pass_id, written_at, body, "
            "prev_hash, hash) FROM STDIN") as copy:
        for r in batch:
            copy.write_row((log_id, r.seq, r.kind, r.session_id, r.pass_id, r.written_at,
                            r.body, r.prev_hash, r.hash))
    return len(batch)


def _send_heads(conn: Any, log: Any, log_id: str) -> None:
    head = conn.execute("SELECT head_seq FROM smp_logs WHERE log_id = %s",
                        (log_id,)).fetchone()[0]
    for h in log.signed_heads():
        if h.seq <= head:
            conn.execute("INSERT INTO smp_signed_heads (log_id, seq, hash, reason, "
                         "key_fingerprint, signature) VALUES (%s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING",
                         (log_id, h.seq, h.hash, h.reason, h.key_fingerprint, h.signature))
    current = log.current_head()
    if current is not None and current.seq == head:
        conn.execute("UPDATE smp_logs SET head_signature = %s WHERE log_id = %s",
                     (current.signature, log_id))


@dataclass(frozen=True)
class Comparison:
    problem: str | None
    local_count: int
    central_count: int


def compare(log: Any, url: str) -> Comparison:
    """`smp sessions verify --against`: does the local log hold what the central store holds,
    and are the central heads signed by the registered key?"""
    import psycopg

    conn = connect(url)
    try:
        log_id = log.log_id
        row = conn.execute("SELECT l.head_seq, l.head_hash, l.head_signature, i.public_key "
                           "FROM smp_logs l JOIN smp_installations i USING (key_fingerprint) "
                           "WHERE l.log_id = %s", (log_id,)).fetchone()
        local_count = log.head()[0]
        if row is None:
            return Comparison(f"log {log_id} is not in the central store: sync it first "
                              "(smp sessions sync --to URL)", local_count, 0)
        central_seq, central_hash, signature, public = row
        key = PublicKey(public)
        if signature and not key.verify(signature, head_statement(log_id, central_seq,
                                                                  central_hash)):
            return Comparison(f"the central head of log {log_id} (record {central_seq}) is not "
                              "signed by its registered key", local_count, central_seq)
        first = first_divergence(conn, log, log_id, min(central_seq, local_count))
        if first is not None:
            return Comparison(f"record {first}: the local log differs from the central store "
                              "(rewritten or forked)", local_count, central_seq)
        if local_count < central_seq:
            return Comparison(f"record {local_count + 1}: missing locally; the central store "
                              f"holds log {log_id} up to record {central_seq} (records removed "
                              "or the log replaced by an older copy)", local_count, central_seq)
        return Comparison(None, local_count, central_seq)
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot read the central store {_safe(url)}: "
                                f"{_why(exc, url)}") from None
    finally:
        conn.close()


def installation_logs(url: str, fingerprints: Collection[str]) -> list[tuple[str, int]]:
    """(log_id, head record) of every log the central store holds under these installation
    keys, by log_id: what a data directory synced to it must still hold."""
    import psycopg

    if not fingerprints:
        return []
    conn = connect(url)
    try:
        return [(str(log_id), int(seq)) for log_id, seq in conn.execute(
            "SELECT log_id, head_seq FROM smp_logs WHERE key_fingerprint = ANY(%s) "
            "ORDER BY log_id", (list(fingerprints),))]
    except psycopg.Error as exc:
        raise CentralStoreError(f"cannot read the central store {_safe(url)}: "
                                f"{_why(exc, url)}") from None
    finally:
        conn.close()
