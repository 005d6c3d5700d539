"""The SQLite pass log's signed heads: writing them, and gathering what an audit checks."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from smpdevice.records import readonly as readonly_db  # BUSY_WAIT_S, read at each open
from smpdevice.records.audit import Audit, AuditInput, StoredHead, audit, being_written
from smpdevice.records.chain import (
    GENESIS_HASH,
    BrokenLink,
    ChainRecord,
    ChainWalk,
    verify_rows,
)
from smpdevice.records.keys import InstallationKey, PublicKey, recorded_keys
from smpdevice.records.model import iso
from smpdevice.records.signing import (
    SIGN_EVERY_RECORDS,
    Receipt,
    _receipts,
    head_statement,
    read_anchors,
)
from smpdevice.records.sqlite_layout import checked, damaged_key, once_signed, schema_problem

SIGNED_SCHEMA = 3  # the first schema whose heads are signed


def log_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE name = 'log_id'").fetchone()
    return row[0] if row else ""


def register_key(conn: sqlite3.Connection, key: InstallationKey) -> None:
    """Record the public half of `key` in the log (so others can check; not a trust root)."""
    conn.execute("INSERT INTO signing_keys (fingerprint, public_key, first_used) "
                 "VALUES (?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                 (key.fingerprint, key.public.hex, iso(datetime.now(UTC))))


def write_head(conn: sqlite3.Connection, key: InstallationKey, the_log_id: str, seq: int,
               digest: str, reason: str | None = None) -> str:
    """Sign the head (seq, digest) into `chain_head`; also keep it in `signed_heads` when
    `reason` is given or at every SIGN_EVERY_RECORDS records. Returns the signature."""
    signature = key.sign(head_statement(the_log_id, seq, digest))
    head = (seq, digest, key.fingerprint, signature)  # each checked to be stored as written
    checked(conn, "INSERT INTO chain_head (id, seq, hash, key_fingerprint, signature) "
            "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
            "hash = excluded.hash, key_fingerprint = excluded.key_fingerprint, "
            "signature = excluded.signature", head, f"the chain head (record {seq})",
            "SELECT seq, hash, key_fingerprint, signature FROM chain_head WHERE seq = ?", head)
    if reason is None and seq % SIGN_EVERY_RECORDS == 0:
        reason = "interval"
    if reason is not None:
        checked(conn, "INSERT INTO signed_heads (seq, hash, reason, key_fingerprint, signature) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO UPDATE SET reason = excluded.reason",
                (seq, digest, reason, key.fingerprint, signature), f"the signed head at {seq}",
                "SELECT seq, hash FROM signed_heads WHERE seq = ?", (seq, digest))
    return signature


def adopt(conn: sqlite3.Connection, key: InstallationKey) -> None:
    """Sign the head of a log that has none signed yet (written before heads were signed):
    from now on this installation vouches for its content as it is."""
    row = conn.execute("SELECT seq, hash, signature FROM chain_head").fetchone()
    if row is not None and row[2] is None:
        write_head(conn, key, log_id(conn), row[0], row[1], reason="adopted")


def audit_input(conn: sqlite3.Connection, version: int, *,
                trusted: Mapping[str, PublicKey] | None,
                anchors: Sequence[tuple[str, Receipt]], path: Path | None = None,
                trusted_fingerprints: Collection[str] = ()) -> AuditInput:
    """What the audit checks, read from the file (the records are streamed)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    signed = version >= SIGNED_SCHEMA and "meta" in tables
    head: StoredHead | None = None
    if "chain_head" in tables:
        columns = "seq, hash, key_fingerprint, signature" if signed else "seq, hash, NULL, NULL"
        row = conn.execute(f"SELECT {columns} FROM chain_head").fetchone()
        head = StoredHead(*row) if row else None
    heads: list[StoredHead] = []
    keys: dict[str, PublicKey] = {}
    if "signed_heads" in tables:
        heads = [StoredHead(seq, digest, fpr, sig, reason) for seq, digest, reason, fpr, sig in
                 conn.execute("SELECT seq, hash, reason, key_fingerprint, signature "
                              "FROM signed_heads ORDER BY seq")]
    if "signing_keys" in tables:
        # Keyed by each key's own fingerprint: the stored label is not evidence.
        keys = recorded_keys(conn)
    return AuditInput(records=(), log_id=log_id(conn) if signed else "",
                      chain_head=head, signed_heads=heads, log_keys=keys, trusted=trusted,
                      trusted_fingerprints=tuple(trusted_fingerprints), anchors=anchors,
                      signed=signed, has_head=version >= 2,
                      walk=lambda keep: _walk(conn, keep, path))


_COLUMNS = "seq, kind, session_id, pass_id, written_at, body, prev_hash, hash"
_ROWS = f"SELECT {_COLUMNS} FROM records WHERE seq > ? AND seq <= ? ORDER BY seq"
# The same row with every text read as bytes: text that is not UTF-8 cannot be decoded.
_RAW_ROW = ("SELECT seq, " + ", ".join(f"CAST({c} AS BLOB)" for c in _COLUMNS.split(", ")[1:])
            + " FROM records WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT 1")


def _rows(conn: sqlite3.Connection, first: int = 1, last: int | None = None
          ) -> Iterator[tuple[Any, ...]]:
    """The records `first..last` as plain rows, streamed by one query. A record whose text is
    not UTF-8 (the writer never writes such text: only an edited file has it) comes with that
    text decoded leniently, so its hash fails and the walk names it, instead of an error."""
    after, last = first - 1, last if last is not None else 2**62
    while True:
        try:
            for row in conn.execute(_ROWS, (after, last)):
                after = row[0]
                yield row
            return
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc):
                raise
        raw = conn.execute(_RAW_ROW, (after, last)).fetchone()
        if raw is None:
            return
        after = raw[0]
        yield (raw[0], *(None if v is None else bytes(v).decode("utf-8", "replace")
                         for v in raw[1:]))


PARALLEL_FROM_RECORDS = 200_000  # below this, one process is as fast


def _walk(conn: sqlite3.Connection, keep: Collection[int], path: Path | None) -> ChainWalk:
    """Walk the chain; a big log (with a file to reopen) in one process per CPU, each taking a
    range of records, their seams checked here."""
    import multiprocessing  # here: only a chain walk needs it (issue 13: start-up)

    last = conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
    workers = min(os.cpu_count() or 1, 8)
    # fork only a single-threaded process (a CLI): fork would copy other threads' held locks;
    # spawn would re-run the caller's main module. Otherwise, and on any failure, one walk.
    if (path is None or workers < 2 or last < PARALLEL_FROM_RECORDS
            or threading.active_count() > 1
            or "fork" not in multiprocessing.get_all_start_methods()):
        return _serial(conn, keep)
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    step = -(-last // workers)
    ranges = [(lo, min(lo + step - 1, last)) for lo in range(1, last + 1, step)]
    keep = frozenset(keep)
    try:
        with ProcessPoolExecutor(len(ranges),
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            walks = list(pool.map(_walk_range, [str(path)] * len(ranges), ranges,
                                  [keep] * len(ranges)))
    except (OSError, BrokenProcessPool):
        return _serial(conn, keep)
    total = ChainWalk()
    for (lo, _), (first_prev, walk) in zip(ranges, walks, strict=True):
        if lo > 1 and first_prev is not None and first_prev != total.head_hash:
            # The seam, checked before anything in the range (as one walk would).
            walk.broken = BrokenLink(lo, f"({_describe(conn, lo)}) does not link to record "
                                         f"{lo - 1}: its prev_hash is not that record's hash")
            walk.count, walk.head_hash = lo - 1, total.head_hash
        total.kept.update(walk.kept)
        total.kept_records.update(walk.kept_records)
        if walk.broken is not None:
            total.broken = walk.broken
            total.count, total.head_hash = walk.count, walk.head_hash
            return total
        total.count, total.head_hash = walk.count, walk.head_hash
    return total


def _serial(conn: sqlite3.Connection, keep: Collection[int]) -> ChainWalk:
    return verify_rows(_rows(conn), keep=keep)


def _walk_range(path: str, bounds: tuple[int, int], keep: frozenset[int]
                ) -> tuple[str | None, ChainWalk]:
    """One worker's range: walked from the prev_hash its first record holds (checked at the
    seam by the caller)."""
    first, last = bounds
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=readonly_db.BUSY_WAIT_S)
    try:
        row = conn.execute("SELECT prev_hash FROM records WHERE seq = ?", (first,)).fetchone()
        start = row[0] if row else GENESIS_HASH
        walk = verify_rows(_rows(conn, first, last), keep=keep, start_seq=first,
                           start_hash=start)
        return (row[0] if row else None), walk
    finally:
        conn.close()


def _describe(conn: sqlite3.Connection, seq: int) -> str:
    row = conn.execute("SELECT kind, session_id, pass_id FROM records WHERE seq = ?",
                       (seq,)).fetchone()
    return ChainRecord(seq, row[0], row[1], row[2], "", "", "", "").describe()


def closed_sessions_signed(conn: sqlite3.Connection) -> int:
    """How many session closes were signed (each should have a line in the anchors file)."""
    try:
        return conn.execute(
            "SELECT count(*) FROM signed_heads WHERE reason = 'session_close'").fetchone()[0]
    except sqlite3.OperationalError:  # no signed_heads table: an older or damaged log
        return 0


def audit_log(conn: sqlite3.Connection, version: int, anchors_file: Path, *,
              trusted: Mapping[str, PublicKey] | None,
              anchors: bool | Path | Sequence[tuple[str, Receipt]],
              receipts: Sequence[tuple[str, Receipt]] = (), allow_unsigned: bool,
              path: Path | None = None, trusted_fingerprints: Collection[str] = ()) -> Audit:
    """`PassLog.audit`: audit the log with its anchors. `anchors` True reads the file beside
    the log, a Path that file (a backup's): either must hold the receipt of every session
    close the log signed. The log is read in ONE read transaction (one WAL snapshot: head,
    signed heads and records as one commit left them); the anchors file before it (each
    receipt then names a record the snapshot must hold) and after it (each close the snapshot
    holds has its receipt), each time where it ended while held shared (`_read_anchors`)."""
    file = anchors_file if anchors is True else anchors if isinstance(anchors, Path) else None
    before = _read_anchors(file, live=anchors is True) if file is not None else None
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot is taken
        return _audit_snapshot(conn, version, anchors_file, anchors, before, receipts,
                               trusted=trusted, allow_unsigned=allow_unsigned, path=path,
                               trusted_fingerprints=trusted_fingerprints)
    finally:
        if own and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")  # read only: nothing to keep


ANCHORS_WAIT_S = readonly_db.BUSY_WAIT_S  # as long as a reader waits for a busy log


@dataclass
class _AnchorsRead:
    """An anchors file as read: its receipts (None: no file), whether a writer held it
    through ANCHORS_WAIT_S, and the (device, inode, bytes) read."""

    receipts: list[Receipt] | None
    held: bool = False
    mark: tuple[int, int, int] | None = None


def _read_anchors(file: Path, *, live: bool, since: _AnchorsRead | None = None
                  ) -> _AnchorsRead:
    """The anchors file up to where it ended while held shared (never half a receipt: a
    writer appends under its exclusive lock). A `live` file (beside the log) that is absent
    is None; a named one (a backup's) is read: its absence is an error. `since`: an earlier
    read of this file (which only grows): its bytes are not parsed again."""
    if live and not (file.exists() or file.is_symlink()):
        return _AnchorsRead(None)
    with _shared(file) as (held, mark):
        pass  # the lock is only to learn where the file ends: parsed after it is let go
    if mark is None:  # not a regular file, or cannot be opened: read_anchors says why
        return _AnchorsRead(read_anchors(file), held)
    first, known = 0, []
    if since is not None and since.mark is not None and since.mark[:2] == mark[:2] \
            and since.mark[2] <= mark[2]:
        first, known = since.mark[2], list(since.receipts or [])
    fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != mark[:2]:  # replaced meanwhile: read it as it is
            return _AnchorsRead(read_anchors(file), held)
        handle.seek(first)
        prefix = cast(BinaryIO, _Prefix(handle, mark[2] - first))
        return _AnchorsRead(known + list(_receipts(prefix, file)), held, mark)


class _Prefix:
    """The first `size` bytes of a binary file, read by lines (what `_receipts` reads)."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle, self._left = handle, size

    def readline(self, limit: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        line = self._handle.readline(self._left if limit < 0 else min(limit, self._left))
        self._left -= len(line)
        return line


@contextlib.contextmanager
def _shared(file: Path) -> Iterator[tuple[bool, tuple[int, int, int] | None]]:
    """Hold `file` shared (a writer holds it exclusively from before a close commits until
    its receipt is appended: sqlite_recovery.anchors_held). Yields (held by a writer through
    ANCHORS_WAIT_S, (device, inode, size) then, None for no regular file)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False, None
        return
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        yield False, None
        return
    held = False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield False, None
            return
        deadline = time.monotonic() + ANCHORS_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = True
                    break
                time.sleep(0.005)  # a writer holds it for the ms a close takes
            except OSError:
                break
        info = os.fstat(fd)
        yield held, (info.st_dev, info.st_ino, info.st_size)
    finally:
        os.close(fd)  # releases the lock


def _audit_snapshot(conn: sqlite3.Connection, version: int, anchors_file: Path,
                    anchors: bool | Path | Sequence[tuple[str, Receipt]],
                    before: _AnchorsRead | None, receipts: Sequence[tuple[str, Receipt]], *,
                    trusted: Mapping[str, PublicKey] | None, allow_unsigned: bool,
                    path: Path | None, trusted_fingerprints: Collection[str]) -> Audit:
    """`audit_log` inside its read transaction."""
    altered = schema_problem(conn, version, missing=False) or damaged_key(conn)
    if altered is not None:
        return Audit(problem=BrokenLink(0, altered))
    found: list[tuple[str, Receipt]] = []
    whole: str | None = None  # the anchors file read whole, if one was
    anchored: set[int] = set()
    held, last = False, 0
    if anchors is True or isinstance(anchors, Path):
        label = "anchors file" if anchors is True else str(anchors)
        file = anchors_file if anchors is True else anchors
        last = _last_seq(conn)  # in the snapshot, then the file: it holds all its closes
        early = before.receipts if before is not None else None
        read = (_read_anchors(file, live=True, since=before) if anchors is True
                else _AnchorsRead(early))
        if read.receipts is None and early is None:
            if closed := closed_sessions_signed(conn):
                return Audit(problem=BrokenLink(0, (
                    f"the anchors file {anchors_file} is missing, though {closed} sessions "
                    "were closed with a receipt: restore it, or check without it "
                    "(--no-anchors) and against the receipts clients kept")))
        else:
            # A receipt read after the snapshot beyond its end: a close committed meanwhile.
            seen = set(early or [])
            found = [(f"{label}, line {i}", r) for i, r in enumerate(early or [], start=1)]
            found += [(f"{label}, line {i}", r)
                      for i, r in enumerate(read.receipts or [], start=1)
                      if r.seq <= last and r not in seen]
            anchored = {r.seq for _, r in found}
            whole, held = str(file), read.held
    elif anchors:
        found = list(anchors)
    data = audit_input(conn, version, trusted=trusted, anchors=[*found, *receipts],
                       path=path, trusted_fingerprints=trusted_fingerprints)
    if whole is not None:
        data.anchors_file, data.anchored = whole, anchored
        data.pending_close = being_written(data.signed_heads, anchored, last) if held else None
    result = audit(data)
    if result.ok and (gone := schema_problem(conn, version, changed=False)) is not None:
        result.problem = BrokenLink(0, gone)  # a table the records did not need (meta, say)
    named = [anchors_file, *([anchors] if isinstance(anchors, Path) else [])]  # --no-anchors too
    if result.ok and not data.signed and (once := once_signed(conn, named)) is not None:
        result.problem = BrokenLink(0, once)  # as a writer refuses it (--allow-unsigned too)
    if result.ok and not data.signed and result.count and not allow_unsigned:
        result.problem = BrokenLink(1, (
            "not covered by a valid signature: this log was written before heads were signed. "
            "Open it once with a writer (e.g. `smp run`) to sign its head, or check the plain "
            "chain only with --allow-unsigned"))
    return result


def _last_seq(conn: sqlite3.Connection) -> int:
    try:
        return conn.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
    except sqlite3.OperationalError:  # no records table: the walk names it
        return 0
