"""A writer's open checks every signed head the log keeps, not only its chain head (review 19).

A `signed_heads` row whose signature was altered, or that names a record the log no longer
holds as it was signed, is evidence the log was changed without the installation key: verify
names it, and a writer refuses to append to such a log (`LogAltered`, exit 3, nothing
written), as it refuses a head it cannot vouch for (`sqlite_recovery.check_head`).

Checking a signature costs 45-120 us (Ed25519, quiet) and a log keeps a head at every
session close: tens of thousands in a clinic's years. So the writer keeps, in the log's `meta`
(`heads_checked`), what it found sound at its last open: how many heads, up to which record,
a SHA-256 of those rows (quoted by SQLite in one statement), signed with its key. At the next
open only the heads after it are verified one by one; the older ones must hash as they did,
else each is verified again. The note cannot be forged without a key the log records (what
its signature covers is never a head's statement); deleted, damaged or an older copy of it
costs only time: every head is then checked again. Measured on a log of 200,000 records and
20,312 signed heads, the machine loaded (load 17-20 on 2 cores): an open 0.32-0.35 s against
0.18-0.24 s without the check; the first open of a log without the note 7.4 s, once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from smpdevice.records.audit import StoredHead, _valid
from smpdevice.records.keys import InstallationKey, PublicKey, recorded_keys
from smpdevice.records.sqlite_layout import checked
from smpdevice.records.sqlite_recovery import LogAltered

NOTE = "heads_checked"  # the meta row


def _statement(log_id: str, seq: int, count: int, digest: str) -> bytes:
    return f"smpdevice-heads-checked/1\n{log_id}\n{seq}\n{count}\n{digest}".encode()


def _digest(conn: sqlite3.Connection, upto: int) -> tuple[int, str]:
    """(count, SHA-256) of everything a head's check reads, for the signed heads up to record
    `upto`: each head's row and the hash of the record it names (NULL when the log no longer
    holds it), and the log's `signing_keys`; each value as SQLite quotes it (types and bounds
    kept: no two rows read alike), the heads in one statement. A change to any of them changes
    the digest, and every head is checked again."""
    keys = conn.execute(
        "SELECT group_concat(line, char(10)) FROM (SELECT quote(fingerprint) || ',' || "
        "quote(public_key) AS line FROM signing_keys ORDER BY fingerprint, public_key)"
    ).fetchone()[0]
    count, heads = conn.execute(
        "SELECT count(*), group_concat(line, char(10)) FROM (SELECT quote(h.seq) || ',' || "
        "quote(h.hash) || ',' || quote(h.reason) || ',' || quote(h.key_fingerprint) || ',' || "
        "quote(h.signature) || ',' || quote(r.hash) AS line FROM signed_heads AS h LEFT JOIN "
        "records AS r ON r.seq = h.seq WHERE h.seq <= ? ORDER BY h.seq)", (upto,)).fetchone()
    keys_text = str(keys or "")
    text = f"{len(keys_text)}\n{keys_text}\n{heads or ''}"
    return int(count), hashlib.sha256(text.encode()).hexdigest()


def _noted(conn: sqlite3.Connection, log_id: str, keys: dict[str, PublicKey]
           ) -> tuple[int, int, str] | None:
    """(record, count, digest) of a note signed by a key the log records; None else."""
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (NOTE,)).fetchone()
    if row is None:
        return None
    try:
        note = json.loads(row[0])
        seq, count, digest = note["seq"], note["count"], str(note["digest"])
        if not (_count(seq) and _count(count)):
            return None  # a float, Infinity, a bool, a string...: damaged, no note
        key = keys.get(str(note["key"]))
        if key is not None and key.verify(str(note["signature"]),
                                          _statement(log_id, seq, count, digest)):
            return seq, count, digest
    except (ValueError, TypeError, KeyError, RecursionError):
        pass
    return None


def _count(value: object) -> bool:
    """A JSON integer SQLite can hold (a record number, a count), not a bool."""
    return type(value) is int and 0 <= value < 2 ** 63


def check_signed_heads(conn: sqlite3.Connection, path: Path, log_id: str,
                       key: InstallationKey) -> None:
    """LogAltered naming the first signed head that does not hold (its record or its
    signature, by a key the log records); then the note of what was checked is renewed."""
    keys = recorded_keys(conn)
    noted = _noted(conn, log_id, keys)
    start = noted[0] if noted is not None and _digest(conn, noted[0]) == noted[1:] else 0
    for seq, head_hash, reason, fingerprint, signature in conn.execute(
            "SELECT seq, hash, reason, key_fingerprint, signature FROM signed_heads "
            "WHERE seq > ? ORDER BY seq", (start,)).fetchall():
        record = conn.execute("SELECT hash FROM records WHERE seq = ?", (seq,)).fetchone()
        why = (("names a record the log no longer holds as it was signed" if record is None
                or record[0] != head_hash else None)
               or _valid(keys, StoredHead(seq, head_hash, fingerprint, signature, reason),
                         log_id, False))
        if why is not None:
            raise LogAltered(
                f"the pass log {path} was changed without the installation key: the signed "
                f"head at record {seq} ({reason}) {why}. Nothing was written: run `smp "
                f"sessions verify --db {path}` to see what, and restore the log from a backup "
                "(or record in another data directory meanwhile)")
    last = conn.execute("SELECT max(seq) FROM signed_heads").fetchone()[0]
    if last is not None and (noted is None or start != noted[0] or last != start):
        count, digest = _digest(conn, last)
        value = json.dumps({"seq": last, "count": count, "digest": digest,
                            "key": key.fingerprint,
                            "signature": key.sign(_statement(log_id, last, count, digest))})
        checked(conn, "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO "
                "UPDATE SET value = excluded.value", (NOTE, value), "the note of the signed "
                "heads checked", "SELECT name, value FROM meta WHERE name = ?", (NOTE, value))
