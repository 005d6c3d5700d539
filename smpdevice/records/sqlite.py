"""The pass log in SQLite: the durable, tamper-evident record of what was done to a person's skin.

One SQLite file (`smpdevice.paths.db_path`), WAL, `synchronous=FULL`: a record is on disk when
the call that wrote it returns, so the controller may start the needle after `begin_pass` and
knows the pass is kept once `end_pass` returns.

**The chain** (`smpdevice.records.chain`). Everything final is an append-only row of
`records`, one per event; removing rows from the end disagrees with the `chain_head` row written
in the same transaction. The head is signed with the installation key at every commit, and
kept signed at every session close and every 512 records (`smpdevice.records.signing`); each
closed session's receipt goes to the anchors file beside the log and on the aftercare sheet.
`verify()`/`audit()` name the first record that is broken or not covered by a valid signature,
or the anchor the log no longer holds.

**Checkpoints are not chained** (table `progress`, one row per pass in progress, overwritten in
place and deleted when the pass ends). A checkpoint is provisional: it is superseded a second
later and becomes meaningless once the pass ends with its final figures. Chaining every
checkpoint would grow the chain (and `verify`) by the number of telemetry checkpoints rather
than passes, for figures that are final only in the rare crash; in that case recovery writes the
last checkpoint's figures into the chained `pass_end`, and from then on they are covered. The
window where a checkpoint could be edited undetected is the crash-to-restart interval only.

**Creation is atomic**: the schema is created (or migrated) and the head checked in one
transaction (a log refused is left as it was); a reader finds a log being created empty.

**Crash safety.** A pass begun but never ended (the process died) is found on the next open by a
writer and closed with outcome `controller_crashed`, carrying the last checkpoint's figures and
ended at that checkpoint's time (or at its start, with no checkpoint, or a damaged one:
`checkpoint_damaged`). The receipts a crash kept from the anchors file are appended then too;
and a writer never chains onto a head it cannot vouch for (`sqlite_recovery`). Only one writer
may hold the log, whatever name it is opened by (exclusive flocks on `<file>.lock` and on the
file itself, released by the OS even on SIGKILL: `sqlite_schema`), so a reader such as
`smp sessions list` never mistakes a live pass for a crashed one: readers open the file
read-only (`readonly=True`) and do not recover or migrate.

**Failures.** Every storage failure (disk full, read-only file, I/O error, a locked or corrupt
file) is raised as `PassLogError` with a message that says what to do; the controller must stop
the needle on it. A failed write is rolled back whole: the chain never holds half an event.

Calls are serialised by a lock: the controller's thread and a UI thread may share a `PassLog`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from smpdevice import checks
from smpdevice.paths import db_path
from smpdevice.records import export, export_resumed, session_chain, sqlite_layout, sqlite_signing
from smpdevice.records import sqlite_recovery as recovery
from smpdevice.records.audit import Audit
from smpdevice.records.chain import GENESIS_HASH, BrokenLink, record_hash
from smpdevice.records.keys import InstallationKey, PublicKey
from smpdevice.records.model import (
    PassLogError,
    PassOutcome,
    PassStats,
    SessionRecord,
    begin_extras,
    canonical,
    iso,
)
from smpdevice.records.signing import Receipt, anchors_argument, append_anchor, receipts_argument
from smpdevice.records.sqlite_counters import PenCounterReads
from smpdevice.records.sqlite_file import SqliteFile, path_argument
from smpdevice.records.sqlite_lookup import OpenRecordLookups
from smpdevice.records.sqlite_read import SqliteReads
from smpdevice.records.sqlite_resume import require_next
from smpdevice.records.sqlite_schema import anchors_beside, refuse_anchors


class PassLog(SqliteFile, SqliteReads, PenCounterReads, OpenRecordLookups,
              recovery.ReceiptCompletion):
    """The pass log of one SQLite file. A writer by default; `readonly=True` to only read."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False,
                 key: InstallationKey | None = None):
        """`key` signs the heads (a writer's default: this installation's key, created on
        first use; see `smpdevice.records.keys`). Readers need no key."""
        path_argument(path)  # a str or PathLike, no NUL (InvalidArgument): before any use
        self.recovered: list[str] = []
        # Beside the real file, as SQLite's -wal and the writer's lock: one log, one anchors
        # file, whatever name (a symlink) it is opened by.
        self.anchors_path = anchors_beside(Path(path), writer=not readonly)
        if not readonly:  # before anything is written: no link, no receipts of a gone log
            refuse_anchors(self.anchors_path, Path(path))
        self._key = key if key is not None or readonly else InstallationKey.load_or_create()
        self._log_id = ""
        self._tail: tuple[int, str] | None = None  # (seq, hash) of the last record
        self._progress: set[str] = set()  # passes this writer wrote a checkpoint row for
        self._unanchored: list[Receipt] = []  # receipts whose append failed: retried first
        self.anchored: list[Receipt] = []  # receipts this open put back (a crash cut them)
        super().__init__(path, readonly=readonly)  # a writer: `_check_before_writing` too
        if not readonly:
            try:
                self.recovered = self._recover()
                self._complete_anchors()
                self._checkpoint_wal()
            except BaseException:
                self.close()
                raise

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, readonly: bool = False,
             key: InstallationKey | None = None) -> PassLog:
        """Open the log at `path`, else `$SMP_DATA_DIR/passlog.sqlite`, else the user default."""
        return cls(db_path(path, create=not readonly), readonly=readonly, key=key)

    def _check_before_writing(self) -> None:
        """Never chain onto a head it cannot vouch for (in the migration's transaction)."""
        conn, signer = self._conn, self._signer
        self._log_id = sqlite_signing.log_id(conn)
        unsigned = recovery.check_head(conn, self.path, self._log_id, self.anchors_path, signer)
        sqlite_signing.register_key(conn, signer)
        if unsigned:  # written before heads were signed: adopted as it is
            sqlite_signing.adopt(conn, signer)

    @property
    def _signer(self) -> InstallationKey:
        if self._key is None:
            raise PassLogError(f"the pass log {self.path} was opened read-only")
        return self._key

    @property
    def key_fingerprint(self) -> str | None:
        """The fingerprint of the key that signs this writer's heads (None for a reader)."""
        return self._key.fingerprint if self._key else None

    # --- writing -------------------------------------------------------------------------
    def open_session(
        self, *, technician: str, client_ref: str, session_kind: str, pen_serial: str,
        firmware_version: str, calibration_id: str, profile_hash: str,
        screening: dict[str, Any], simulated: bool, envelope: dict[str, Any] | None = None,
        opened_at: datetime | None = None, profile: dict[str, Any] | None = None,
        footswitch: str | None = None,
    ) -> str:
        """Record a new session (durably) and return its id.

        `simulated`: whether the pen is the simulator (every pass of the session carries it
        too). `envelope`: the safety envelope in force, `{"sha256": ..., "zones": {...}}`
        (`smpdevice.envelope.envelope_record`). `profile`: the profile's content (its JSON
        form), so `smp run --resume` can recover the plan from the log.
        """
        if not isinstance(simulated, bool):
            raise ValueError(f"simulated must be True or False, not {simulated!r}")
        if envelope is not None and not (isinstance(envelope, dict)
                                         and isinstance(envelope.get("sha256"), str)):
            raise ValueError("envelope must be None or a dict with its 'sha256' "
                             "(smpdevice.envelope.envelope_record)")
        session_id = "S" + uuid.uuid4().hex[:16]
        opened = iso(opened_at or datetime.now(UTC))
        body = {
            "simulated": simulated, "envelope": envelope,
            "key_fingerprint": self._key.fingerprint if self._key else None,
            "technician": technician, "client_ref": client_ref,
            "session_kind": getattr(session_kind, "value", session_kind),
            "pen_serial": pen_serial, "firmware_version": firmware_version,
            "calibration_id": calibration_id, "profile_hash": profile_hash,
            "screening": dict(screening), "opened_at": opened,
        }
        if profile is not None:  # only when given: older bodies (and their hashes) unchanged
            body["profile"] = dict(profile)
        if footswitch is not None:  # the footswitch mode in force (required|optional|off)
            body["footswitch"] = str(footswitch)
        with self._tx():
            self._append("session_open", session_id, None, body)
        return session_id

    def begin_pass(
        self, session_id: str, *, index: int, zone: str, depth_mm: float, speed_hz: float,
        duty_pct: float, period_ms: float, started_at: datetime,
        pen_counters: Mapping[str, int] | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> str:
        """Record the start of a pass (durably, before the needle runs) and return its id."""
        pass_id = "P" + uuid.uuid4().hex[:16]
        body = {"index": index, "zone": zone, "depth_mm": depth_mm, "speed_hz": speed_hz,
                "duty_pct": duty_pct, "period_ms": period_ms, "started_at": iso(started_at)}
        body.update(begin_extras(pen_counters, calibration))  # each checked, only when given
        with self._tx():
            simulated = self._open_session_flag(session_id)
            if simulated is not None:  # each pass carries its session's flag, chained
                body["simulated"] = simulated
            # No `progress` row yet: recovery reads a pass without one as no figures, at its
            # start (what an empty row said), and the pass costs one page less to commit.
            self._append("pass_begin", session_id, pass_id, body)
        return pass_id

    def checkpoint(self, pass_id: str, stats: PassStats) -> None:
        """Record the figures so far of a pass in progress (durably; not chained)."""
        with self._tx():
            self._require_open_pass(pass_id)
            self._conn.execute(
                "INSERT INTO progress (pass_id, written_at, figures) VALUES (?, ?, ?) "
                "ON CONFLICT (pass_id) DO UPDATE SET written_at = excluded.written_at, "
                "figures = excluded.figures",
                (pass_id, iso(datetime.now(UTC)), canonical(stats.figures())))
            self._progress.add(pass_id)

    def end_pass(
        self, pass_id: str, *, outcome: PassOutcome | str, stats: PassStats, ended_at: datetime,
        fault_code: int | None = None, fault_names: list[str] | None = None,
    ) -> None:
        """Record how a pass ended, with its final figures. Durable when this returns."""
        outcome = PassOutcome(outcome)
        if outcome is PassOutcome.fault and fault_code is None:
            raise ValueError("a pass that ended in a fault needs its fault_code")
        with self._tx():
            session_id = self._require_open_pass(pass_id)
            self._end(pass_id, session_id, outcome, stats.figures(), iso(ended_at),
                      fault_code, list(fault_names or []), recovered=False)
        self._progress.discard(pass_id)

    def resume_session(self, session_id: str, *, resumed_at: datetime,
                       details: dict[str, Any]) -> None:
        """Record (chained, durably) that an open session is resumed after an interruption;
        `details` says with what (calibration, envelope, screening, passes left)."""
        body = {**details, "resumed_at": iso(resumed_at)}
        with self._tx():
            self._require_open_session(session_id)
            require_next(self._conn, session_id, details)  # no other resume's meanwhile
            self._append("session_resume", session_id, None, body)

    def close_session(self, session_id: str, *, closed_at: datetime,
                      summary: dict[str, Any]) -> Receipt:
        """Record the end of a session with its summary (every pass must have ended); sign
        its head and return its receipt, also appended to the anchors file."""
        with recovery.anchors_held(self.anchors_path), self._lock:  # readers wait for it
            with self._tx():
                self._require_open_session(session_id)
                still = self._conn.execute(
                    "SELECT count(*) FROM records b WHERE b.session_id = ? AND b.kind = "
                    "'pass_begin' AND NOT EXISTS (SELECT 1 FROM records e WHERE e.kind = "
                    "'pass_end' AND e.pass_id = b.pass_id)", (session_id,)).fetchone()[0]
                if still:
                    raise PassLogError(f"session {session_id} still has {still} pass(es) in "
                                       "progress: end them before closing the session")
                seq, digest = self._append("session_close", session_id, None,
                                           {"closed_at": iso(closed_at), "summary": summary})
                signature = sqlite_signing.write_head(self._conn, self._signer, self._log_id,
                                                      seq, digest, reason="session_close")
            receipt = Receipt(session_id, seq, digest, signature, self._signer.fingerprint,
                              iso(closed_at))
            self._unanchored.append(receipt)  # committed: in the file now, or retried
            exc = self._append_anchors()
        if self._checkpointer is not None:  # between sessions: on its thread, not here
            self._checkpointer.request()
        if exc is not None:
            raise PassLogError(
                f"session {session_id} is recorded and closed, but its receipt could not be "
                f"added to the anchors file {self.anchors_path} ({exc.strerror or exc}); it is "
                f"retried at the next close or start. Keep this receipt elsewhere: "
                f"{receipt.text()}") from exc
        return receipt

    def _append_anchors(self) -> OSError | None:
        """Append the receipts not yet in the anchors file, oldest first; the error, if any
        (noted in the log then, so that a later run's open puts them back too)."""
        while self._unanchored:
            try:
                append_anchor(self.anchors_path, self._unanchored[0])
            except OSError as exc:
                self._note_pending(str(self._unanchored[0].seq))
                return exc
            self._unanchored.pop(0)
        if self._pending_noted and self._anchors_whole:
            self._note_pending(None)  # the file holds every receipt now
        return None

    # --- reading -------------------------------------------------------------------------

    def session(self, session_id: str) -> SessionRecord:
        """One session with its passes. A writer acts on what it reads (a resume, a close):
        its records are first checked against the chain and the signed head
        (`session_chain`: `LogAltered`, exit 3, when one was changed without the key)."""
        if not self.readonly:
            with self._reading():
                session_chain.check_session(self._conn, session_id, self.path, self._log_id)
        return super().session(session_id)

    def export(self, fmt: Literal["jsonl", "csv"], out: TextIO, *, identified: bool = False,
               where: export.ExportFilter | None = None) -> int:
        """Write one row per pass (with its session's identity) to `out`; return the count.

        Columns: `EXPORT_FIELDS`, the same in both formats (`smpdevice.records.export`).
        Pseudonymous unless `identified`; `where` selects passes.
        """
        export.check_request(fmt, out)
        pseudonyms = None
        if not identified:  # a reader creates no key (an auditor's machine has none)
            pseudonyms = export.Pseudonyms(recovery.pseudonym_secret(self._key))
        if export.SQL_EXPORT:
            with self._reading():
                return export.export_sqlite(self._conn, fmt, out, pseudonyms=pseudonyms,
                                            where=where)
        with self._reading():  # each session's opening; each resumed pass's technician, ...
            sessions, played = export_resumed.openings_and_played(self._conn)
        return export.export_records(self._iter_passes(None), sessions, fmt, out,
                                     pseudonyms=pseudonyms, where=where, played_by=played)

    def verify(self, *, trusted: Mapping[str, PublicKey] | None = None,
               anchors: bool | Path | Sequence[tuple[str, Receipt]] = True,
               receipts: Sequence[tuple[str, Receipt]] = (),
               allow_unsigned: bool = False,
               trusted_fingerprints: Collection[str] = ()) -> BrokenLink | None:
        """Check the whole log (`audit`); the first problem, or None when all holds."""
        return self.audit(trusted=trusted, anchors=anchors, receipts=receipts,
                          allow_unsigned=allow_unsigned,
                          trusted_fingerprints=trusted_fingerprints).problem

    def audit(self, *, trusted: Mapping[str, PublicKey] | None = None,
              anchors: bool | Path | Sequence[tuple[str, Receipt]] = True,
              receipts: Sequence[tuple[str, Receipt]] = (),
              allow_unsigned: bool = False,
              trusted_fingerprints: Collection[str] = ()) -> Audit:
        """Check chain, head, signatures and anchors (`smpdevice.records.audit`).

        `trusted`: fingerprint -> public key to accept (None: the keys the log records, which
        proves consistency, not origin). `trusted_fingerprints`: keys to accept named by
        fingerprint only (the log must record their public key). `anchors`: True reads the
        anchors file beside the log (a missing file is a problem once a session was closed
        with a receipt), a path (Path or str) reads that anchors file (a backup's): either
        must hold the receipt of every session close the log signed; False skips it; or give
        (source, receipt) pairs instead (checked, not required to be complete).
        `receipts`: more (source, receipt) pairs to check, e.g. receipts clients kept.
        """
        checks.instance("trusted", trusted, (Mapping, type(None)),
                        "None or a mapping of fingerprint -> PublicKey")
        anchors, receipts = anchors_argument(anchors), receipts_argument(receipts)
        with self._reading():
            return sqlite_signing.audit_log(self._conn, self._version(), self.anchors_path,
                                            trusted=trusted, anchors=anchors,
                                            receipts=receipts, allow_unsigned=allow_unsigned,
                                            path=self._reopenable(),
                                            trusted_fingerprints=trusted_fingerprints)

    def _reopenable(self) -> Path | None:
        """The file, when worker processes may reopen it (a big log): not an immutable or
        copied view, nor a log being created (read as empty in memory)."""
        if self.readonly and self._reader is None:
            return None
        return self.path if self._reader is None or self._reader.how == "ro" else None

    # --- internals -----------------------------------------------------------------------

    def _recover(self) -> list[str]:
        """Close every pass begun but never ended (its process died) as controller_crashed,
        with its last checkpoint's figures: the needle ran on until the pen's lease ran out, so
        a resume counts it again by the pen's counters (`smpdevice.sessions.crash_count`)."""
        with self._reading():
            unended = [row[0] for row in self._conn.execute(
                "SELECT pass_id FROM records WHERE kind = 'pass_begin' EXCEPT "
                "SELECT pass_id FROM records WHERE kind = 'pass_end'")]
        for pass_id in unended:  # each in its own transaction: all of them, or raised
            with self._tx():
                session_id, begin, begun_at = self._conn.execute(
                    "SELECT session_id, body, written_at FROM records WHERE kind = "
                    "'pass_begin' AND pass_id = ?", (pass_id,)).fetchone()
                row = self._conn.execute("SELECT written_at, figures FROM progress WHERE "
                                         "pass_id = ?", (pass_id,)).fetchone()
                # Not chained until now: a damaged or edited row is not signed in as figures.
                ended_at, figures, damaged = recovery.recovered_end(begin, begun_at, row)
                self._end(pass_id, session_id, PassOutcome.controller_crashed, figures,
                          ended_at, None, [], recovered=True, damaged=damaged)
        return unended

    def _end(self, pass_id: str, session_id: str, outcome: PassOutcome,
             figures: dict[str, Any], ended_at: str, fault_code: int | None,
             fault_names: list[str], *, recovered: bool, damaged: bool = False) -> None:
        body = {"outcome": outcome.value, "ended_at": ended_at, "fault_code": fault_code,
                "fault_names": fault_names, "stats": figures, "recovered": recovered}
        if damaged:  # its checkpoint could not be read: recorded without figures
            body["checkpoint_damaged"] = True
        self._append("pass_end", session_id, pass_id, body)
        if recovered or pass_id in self._progress:  # only a checkpointed pass has a row
            self._conn.execute("DELETE FROM progress WHERE pass_id = ?", (pass_id,))

    def _rolled_back(self) -> None:
        self._tail = None  # a failed transaction may have appended before failing

    def _append(self, kind: str, session_id: str, pass_id: str | None,
                body: dict[str, Any]) -> tuple[int, str]:
        if self._tail is None:  # else known: this writer alone appends (its lock)
            last = self._conn.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
            self._tail = (last[0], last[1]) if last else (0, GENESIS_HASH)
        seq, prev = self._tail[0] + 1, self._tail[1]
        text = canonical(body)
        written_at = iso(datetime.now(UTC))
        digest = record_hash(seq, kind, session_id, pass_id, written_at, text, prev)
        sqlite_layout.insert_record(  # checked: stored as written, or refused (a trigger)
            self._conn, (seq, kind, session_id, pass_id, written_at, text, prev, digest))
        sqlite_signing.write_head(self._conn, self._signer, self._log_id, seq, digest)
        self._tail = (seq, digest)  # forgotten again if the transaction fails
        return seq, digest
