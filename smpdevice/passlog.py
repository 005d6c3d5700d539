"""The pass log: the durable, tamper-evident record of what was done to a person's skin.

One SQLite file (`smpdevice.paths.db_path`), WAL, `synchronous=FULL`: a record is on disk when
the call that wrote it returns, so the controller may start the needle after `begin_pass` and
knows the pass is kept once `end_pass` returns.

**The chain.** Everything final is an append-only row of `records`, one per event:
`session_open`, `pass_begin`, `pass_end`, `session_close`. Each row carries `prev_hash` (the
hash of the row before it) and its own `hash`, SHA-256 over its canonical contents including
`prev_hash` (`record_hash`). Editing a row breaks its hash; deleting one leaves a gap in `seq`
and a `prev_hash` that no longer matches; removing rows from the end disagrees with the
`chain_head` row written in the same transaction. `verify()` names the first broken record.
Anyone able to rewrite the whole file can recompute every hash: `verify` prints the head hash so
it can be kept elsewhere (the session summary, a ticket) as an external anchor.

**Checkpoints are not chained** (table `progress`, one row per pass in progress, overwritten in
place and deleted when the pass ends). A checkpoint is provisional: it is superseded a second
later and becomes meaningless once the pass ends with its final figures. Chaining every
checkpoint would grow the chain (and `verify`) by the number of telemetry checkpoints rather
than passes, for figures that are final only in the rare crash; in that case recovery writes the
last checkpoint's figures into the chained `pass_end`, and from then on they are covered. The
window where a checkpoint could be edited undetected is the crash-to-restart interval only.

**Crash safety.** A pass begun but never ended (the process died) is found on the next open by a
writer and closed with outcome `controller_crashed`, carrying the last checkpoint's figures and
ended at that checkpoint's time (or at its start, with no checkpoint). Only one writer may hold
the log (an exclusive lock on `<file>.lock`, released by the OS even on SIGKILL), so a reader
such as `smp sessions list` never mistakes a live pass for a crashed one: readers open the file
read-only (`readonly=True`) and do not recover or migrate.

**Failures.** Every storage failure (disk full, read-only file, I/O error, a locked or corrupt
file) is raised as `PassLogError` with a message that says what to do; the controller must stop
the needle on it. A failed write is rolled back whole: the chain never holds half an event.

Not thread-safe beyond one call at a time: calls are serialised by a lock, so the controller's
thread and a UI thread may share one `PassLog`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TextIO

from smpdevice.errors import SmpError
from smpdevice.paths import db_path

SCHEMA_VERSION = 2
GENESIS_HASH = "0" * 64
# The pen's stroke and impression counters are taken to be unsigned 32-bit and may wrap.
COUNTER_MODULUS = 2**32


class PassLogError(SmpError):
    """The pass log cannot be read or written. The controller must stop the needle."""

    exit_code = 3


class PassOutcome(StrEnum):
    """How a pass ended."""

    completed = "completed"  # the plan's duration or impressions were reached
    stopped = "stopped"  # the technician stopped it (footswitch, Ctrl-C, stop command)
    fault = "fault"  # the pen latched a fault: `fault_code` and `fault_names` say which
    estop = "estop"
    link_lost = "link_lost"  # the host lost the pen (cable, lease); the pen stopped itself
    controller_crashed = "controller_crashed"  # written by recovery on the next open
    log_error = "log_error"  # the log could not record progress, so the needle was stopped


@dataclass
class PassStats:
    """Aggregates of a pass's telemetry, updated one sample at a time.

    `add(depth_mm, speed_hz)` per telemetry sample; `counters(strokes, impressions)` with the
    pen's running counters: the first values seen are the base, so call it once before the
    needle starts (or the strokes before the first sample are not counted).
    """

    samples: int = 0
    depth_min_mm: float | None = None
    depth_max_mm: float | None = None
    depth_sum_mm: float = 0.0
    speed_sum_hz: float = 0.0
    strokes: int = 0
    impressions: int = 0
    first_counters: tuple[int, int] | None = field(default=None, repr=False)

    def add(self, depth_mm: float, speed_hz: float) -> None:
        self.samples += 1
        self.depth_sum_mm += depth_mm
        self.speed_sum_hz += speed_hz
        if self.depth_min_mm is None or depth_mm < self.depth_min_mm:
            self.depth_min_mm = depth_mm
        if self.depth_max_mm is None or depth_mm > self.depth_max_mm:
            self.depth_max_mm = depth_mm

    def counters(self, stroke_count: int, impression_count: int) -> None:
        """Update strokes and impressions from the pen's running counters (wrap-aware)."""
        if self.first_counters is None:
            self.first_counters = (stroke_count, impression_count)
        first_strokes, first_impressions = self.first_counters
        self.strokes = (stroke_count - first_strokes) % COUNTER_MODULUS
        self.impressions = (impression_count - first_impressions) % COUNTER_MODULUS

    @property
    def depth_mean_mm(self) -> float | None:
        return self.depth_sum_mm / self.samples if self.samples else None

    @property
    def speed_mean_hz(self) -> float | None:
        return self.speed_sum_hz / self.samples if self.samples else None

    def figures(self) -> dict[str, Any]:
        """The figures a pass record keeps."""
        return {
            "samples": self.samples,
            "depth_min_mm": self.depth_min_mm,
            "depth_mean_mm": self.depth_mean_mm,
            "depth_max_mm": self.depth_max_mm,
            "speed_mean_hz": self.speed_mean_hz,
            "strokes": self.strokes,
            "impressions": self.impressions,
        }

    @classmethod
    def from_figures(cls, figures: dict[str, Any]) -> PassStats:
        samples = int(figures.get("samples") or 0)
        return cls(
            samples=samples,
            depth_min_mm=figures.get("depth_min_mm"),
            depth_max_mm=figures.get("depth_max_mm"),
            depth_sum_mm=(figures.get("depth_mean_mm") or 0.0) * samples,
            speed_sum_hz=(figures.get("speed_mean_hz") or 0.0) * samples,
            strokes=int(figures.get("strokes") or 0),
            impressions=int(figures.get("impressions") or 0),
        )


@dataclass(frozen=True)
class PassRecord:
    """One pass as logged. `outcome` is None while the pass is in progress."""

    pass_id: str
    session_id: str
    index: int
    zone: str
    depth_mm: float
    speed_hz: float
    duty_pct: float
    period_ms: float
    started_at: str
    ended_at: str | None
    outcome: str | None
    fault_code: int | None
    fault_names: list[str]
    recovered: bool
    samples: int
    depth_min_mm: float | None
    depth_mean_mm: float | None
    depth_max_mm: float | None
    speed_mean_hz: float | None
    strokes: int
    impressions: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SessionRecord:
    """One session as logged; `passes` is filled by `PassLog.session()` only."""

    session_id: str
    opened_at: str
    technician: str
    client_ref: str
    session_kind: str
    pen_serial: str
    firmware_version: str
    calibration_id: str
    profile_hash: str
    screening: dict[str, Any]
    closed_at: str | None
    summary: dict[str, Any] | None
    pass_count: int
    passes: list[PassRecord] = field(default_factory=list)


@dataclass(frozen=True)
class BrokenLink:
    """The first record where the chain does not hold."""

    record_id: int
    problem: str

    def __str__(self) -> str:
        return f"record {self.record_id}: {self.problem}"


SESSION_FIELDS = ("session_id", "client_ref", "session_kind", "technician", "pen_serial",
                  "firmware_version", "calibration_id", "profile_hash")
PASS_FIELDS = ("pass_id", "index", "zone", "depth_mm", "speed_hz", "duty_pct", "period_ms",
               "started_at", "ended_at", "outcome", "fault_code", "fault_names", "recovered",
               "samples", "depth_min_mm", "depth_mean_mm", "depth_max_mm", "speed_mean_hz",
               "strokes", "impressions")
# One exported row per pass, with its session's identity: the same columns in JSONL and CSV.
EXPORT_FIELDS = SESSION_FIELDS + PASS_FIELDS

_V1 = (
    """CREATE TABLE schema_version (
        version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, description TEXT NOT NULL)""",
    """CREATE TABLE records (
        seq INTEGER PRIMARY KEY,
        kind TEXT NOT NULL
            CHECK (kind IN ('session_open', 'pass_begin', 'pass_end', 'session_close')),
        session_id TEXT NOT NULL,
        pass_id TEXT,
        written_at TEXT NOT NULL,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX records_session_open ON records(session_id) WHERE kind='session_open'",
    "CREATE UNIQUE INDEX records_session_close ON records(session_id) WHERE kind='session_close'",
    "CREATE UNIQUE INDEX records_pass_begin ON records(pass_id) WHERE kind='pass_begin'",
    "CREATE UNIQUE INDEX records_pass_end ON records(pass_id) WHERE kind='pass_end'",
    "CREATE INDEX records_session ON records(session_id, seq)",
)
_V2 = (
    "CREATE TABLE progress (pass_id TEXT PRIMARY KEY, written_at TEXT NOT NULL, "
    "figures TEXT NOT NULL)",
    "CREATE TABLE chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, "
    "hash TEXT NOT NULL)",
    # Files from v1 start their head at the last record they hold.
    "INSERT INTO chain_head (id, seq, hash) "
    "SELECT 1, seq, hash FROM records ORDER BY seq DESC LIMIT 1",
)
# (version, what it adds, SQL statements). Append only; never edit a released step.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "hash-chained records of sessions and passes", _V1),
    (2, "checkpoints of passes in progress; chain head (detects truncation)", _V2),
)


def record_hash(seq: int, kind: str, session_id: str, pass_id: str | None, written_at: str,
                body: str, prev_hash: str) -> str:
    """SHA-256 (hex) of one record, including the previous record's hash.

    Fields are length-prefixed (`<len>:<text>,`), so no edit can move text from one field to
    the next and keep the hash; None (a session record's pass_id) is `-`.
    """
    fields = (str(seq), kind, session_id, "-" if pass_id is None else f"+{pass_id}",
              written_at, body, prev_hash)
    payload = "".join(f"{len(f)}:{f}," for f in fields)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class PassLog:
    """The pass log of one SQLite file. A writer by default; `readonly=True` to only read."""

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self.recovered: list[str] = []
        self._lock = threading.RLock()
        self._lock_file: Any = None
        self._conn: Any = None  # sqlite3.Connection; Any so tests can stand in for the disk
        self._depth = 0
        try:
            self._connect()
            if readonly:
                self._check_version(self._version())
            else:
                self._migrate()
                self.recovered = self._recover()
                self._checkpoint_wal()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *,
             readonly: bool = False) -> PassLog:
        """Open the log at `path`, else `$SMP_DATA_DIR/passlog.sqlite`, else the user default."""
        return cls(db_path(path), readonly=readonly)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None

    def __enter__(self) -> PassLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing -------------------------------------------------------------------------

    def open_session(
        self, *, technician: str, client_ref: str, session_kind: str, pen_serial: str,
        firmware_version: str, calibration_id: str, profile_hash: str,
        screening: dict[str, Any], opened_at: datetime | None = None,
    ) -> str:
        """Record a new session (durably) and return its id."""
        session_id = "S" + uuid.uuid4().hex[:16]
        opened = _iso(opened_at or datetime.now(UTC))
        body = {
            "technician": technician, "client_ref": client_ref,
            "session_kind": getattr(session_kind, "value", session_kind),
            "pen_serial": pen_serial, "firmware_version": firmware_version,
            "calibration_id": calibration_id, "profile_hash": profile_hash,
            "screening": dict(screening), "opened_at": opened,
        }
        with self._tx():
            self._append("session_open", session_id, None, body)
        return session_id

    def begin_pass(
        self, session_id: str, *, index: int, zone: str, depth_mm: float, speed_hz: float,
        duty_pct: float, period_ms: float, started_at: datetime,
    ) -> str:
        """Record the start of a pass (durably, before the needle runs) and return its id."""
        pass_id = "P" + uuid.uuid4().hex[:16]
        body = {"index": index, "zone": zone, "depth_mm": depth_mm, "speed_hz": speed_hz,
                "duty_pct": duty_pct, "period_ms": period_ms, "started_at": _iso(started_at)}
        with self._tx():
            self._require_open_session(session_id)
            self._append("pass_begin", session_id, pass_id, body)
            self._conn.execute(
                "INSERT INTO progress (pass_id, written_at, figures) VALUES (?, ?, ?)",
                (pass_id, body["started_at"], _canonical(PassStats().figures())))
        return pass_id

    def checkpoint(self, pass_id: str, stats: PassStats) -> None:
        """Record the figures so far of a pass in progress (durably; not chained)."""
        with self._tx():
            self._require_open_pass(pass_id)
            self._conn.execute(
                "INSERT INTO progress (pass_id, written_at, figures) VALUES (?, ?, ?) "
                "ON CONFLICT (pass_id) DO UPDATE SET written_at = excluded.written_at, "
                "figures = excluded.figures",
                (pass_id, _iso(datetime.now(UTC)), _canonical(stats.figures())))

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
            self._end(pass_id, session_id, outcome, stats.figures(), _iso(ended_at),
                      fault_code, list(fault_names or []), recovered=False)

    def close_session(self, session_id: str, *, closed_at: datetime,
                      summary: dict[str, Any]) -> None:
        """Record the end of a session with its summary. Every pass must have ended."""
        with self._tx():
            self._require_open_session(session_id)
            still = self._conn.execute(
                "SELECT count(*) FROM progress JOIN records b ON b.kind = 'pass_begin' "
                "AND b.pass_id = progress.pass_id WHERE b.session_id = ?",
                (session_id,)).fetchone()[0]
            if still:
                raise PassLogError(f"session {session_id} still has {still} pass(es) in "
                                   "progress: end them before closing the session")
            self._append("session_close", session_id, None,
                         {"closed_at": _iso(closed_at), "summary": summary})
        self._checkpoint_wal()

    # --- reading -------------------------------------------------------------------------

    def sessions(self) -> list[SessionRecord]:
        """Every session, oldest first, without their passes."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT o.session_id, o.body, c.body, "
                "(SELECT count(*) FROM records p WHERE p.session_id = o.session_id "
                " AND p.kind = 'pass_begin') "
                "FROM records o LEFT JOIN records c "
                "ON c.kind = 'session_close' AND c.session_id = o.session_id "
                "WHERE o.kind = 'session_open' ORDER BY o.seq").fetchall()
        return [_session(sid, json.loads(o), json.loads(c) if c else None, n)
                for sid, o, c, n in rows]

    def session(self, session_id: str) -> SessionRecord:
        """One session with its passes; `session_id` may be a unique prefix of the id."""
        with self._reading():
            rows = self._conn.execute(
                "SELECT session_id FROM records WHERE kind = 'session_open' "
                "AND substr(session_id, 1, ?) = ? LIMIT 2",
                (len(session_id), session_id)).fetchall()
            if not rows:
                raise SmpError(f"no session {session_id!r} in {self.path}; "
                               "`smp sessions list` shows the sessions")
            if len(rows) > 1:
                raise SmpError(f"{session_id!r} matches several sessions; give more of the id")
            sid = rows[0][0]
            o, c = (self._conn.execute(
                f"SELECT body FROM records WHERE kind = '{kind}' AND session_id = ?",
                (sid,)).fetchone() for kind in ("session_open", "session_close"))
        passes = self.passes(sid)
        record = _session(sid, json.loads(o[0]), json.loads(c[0]) if c else None, len(passes))
        return SessionRecord(**{**record.__dict__, "passes": passes})

    def passes(self, session_id: str | None = None) -> list[PassRecord]:
        """Passes in the order they began: of one session, or all."""
        return list(self._iter_passes(session_id))

    def export(self, fmt: Literal["jsonl", "csv"], out: TextIO) -> int:
        """Write one row per pass (with its session's identity) to `out`; return the count.

        Columns: `EXPORT_FIELDS`, in that order, for both formats. JSONL is compact JSON, one
        object a line; in CSV `fault_names` is joined with ';', booleans are true/false and
        None is empty.
        """
        if fmt not in ("jsonl", "csv"):
            raise SmpError(f"unknown export format {fmt!r}: use jsonl or csv")
        writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if writer:
            writer.writerow(EXPORT_FIELDS)
        if not _SQL_EXPORT:
            return self._export_python(writer, out)
        # Built by SQLite's JSON functions: 100k passes in well under the 2 s goal. `->`
        # keeps each number's stored text, so nothing is rounded on the way out.
        with self._reading():
            cursor = self._conn.execute(_export_sql(fmt))
            count = 0
            while rows := cursor.fetchmany(4096):
                if writer:
                    writer.writerows(rows)
                else:
                    out.write("\n".join(row[0] for row in rows))
                    out.write("\n")
                count += len(rows)
        return count

    def _export_python(self, writer: Any, out: TextIO) -> int:
        """The same export for SQLite older than 3.38 (no `->` operator)."""
        with self._reading():
            sessions = {sid: json.loads(body) for sid, body in self._conn.execute(
                "SELECT session_id, body FROM records WHERE kind = 'session_open'")}
        count = 0
        for p in self._iter_passes(None):
            s = sessions.get(p.session_id, {})
            row = {name: s.get(name) for name in SESSION_FIELDS}
            row.update(p.__dict__)
            if writer:
                writer.writerow(_csv_cell(row[name]) for name in EXPORT_FIELDS)
            else:
                out.write(json.dumps({name: row[name] for name in EXPORT_FIELDS},
                                     separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
            count += 1
        return count

    def verify(self) -> BrokenLink | None:
        """Check the whole chain; the first broken link, or None when it is intact."""
        prev, expected = GENESIS_HASH, 1
        with self._reading():
            cursor = self._conn.execute(
                "SELECT seq, kind, session_id, pass_id, written_at, body, prev_hash, hash "
                "FROM records ORDER BY seq")
            for seq, kind, sid, pid, at, body, prev_hash, stored in cursor:
                what = f"{kind} of {'pass ' + pid if pid else 'session ' + sid}"
                if seq != expected:
                    gone = (f"record {expected} is" if seq == expected + 1
                            else f"records {expected}..{seq - 1} are")
                    return BrokenLink(seq, f"{gone} missing (deleted): the chain jumps from "
                                           f"record {expected - 1} to record {seq}")
                if prev_hash != prev:
                    return BrokenLink(seq, f"({what}) does not link to record {seq - 1}: its "
                                           "prev_hash is not that record's hash")
                if record_hash(seq, kind, sid, pid, at, body, prev_hash) != stored:
                    return BrokenLink(seq, f"({what}) was altered: its contents do not match "
                                           "its hash")
                prev, expected = stored, expected + 1
            last = expected - 1
            head = None
            if self._has_table("chain_head"):
                head = self._conn.execute("SELECT seq, hash FROM chain_head").fetchone()
                if head is None and last:
                    return BrokenLink(last, "the chain head record is missing")
        if head is not None and (head[0] != last or head[1] != prev):
            return BrokenLink(head[0], f"the chain ends at record {last} but its head says "
                                       f"record {head[0]}: records were removed from the end")
        return None

    def head(self) -> tuple[int, str]:
        """(number of records, hash of the last): an anchor to keep outside this file."""
        with self._reading():
            row = self._conn.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    # --- internals -----------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            if self.readonly:
                if not self.path.is_file():
                    raise PassLogError(f"no pass log at {self.path}: it is created by the "
                                       "first session (or give the right --db)")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                             check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._take_lock()
                self._conn = sqlite3.connect(self.path, isolation_level=None,
                                             check_same_thread=False)
                mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise PassLogError(f"cannot put the pass log {self.path} in WAL mode "
                                       f"(got {mode}); put the data directory on a local disk")
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=5000")
        except OSError as exc:
            raise PassLogError(f"cannot open the pass log {self.path}: {exc.strerror or exc}; "
                               "check the path and its permissions, or set SMP_DATA_DIR") from exc
        except sqlite3.Error as exc:
            raise self._error("open", exc) from exc

    def _checkpoint_wal(self) -> None:
        """Move the WAL into the main file between sessions (SQLite also does it every 1000
        pages; a larger limit measured slower commits). A failure loses nothing."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _take_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: SQLite's own locking only
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the log's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise PassLogError(
                f"the pass log {self.path} is in use by {holder} (a running controller?). "
                "Stop it first; to only read the log meanwhile, open it read-only "
                "(the `smp sessions` commands do)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def _has_table(self, name: str) -> bool:
        return self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone() is not None

    def _version(self) -> int:
        try:
            if not self._has_table("schema_version"):
                if self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise PassLogError(f"{self.path} is an SQLite file but not a pass log; "
                                       "give the path of a pass log, or a new file")
                return 0
            return self._conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
        except sqlite3.DatabaseError as exc:
            raise self._error("read", exc) from exc

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise PassLogError(
                f"the pass log {self.path} was written by a newer smpdevice (log schema "
                f"{version}; this one reads up to {SCHEMA_VERSION}). Upgrade smpdevice to read "
                "it; do not let an older version write to it")

    def _migrate(self) -> None:
        version = self._version()
        self._check_version(version)
        for target, description, statements in MIGRATIONS:
            if target <= version:
                continue
            with self._tx():
                for statement in statements:
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_version (version, applied_at, description) "
                    "VALUES (?, ?, ?)", (target, _iso(datetime.now(UTC)), description))

    def _recover(self) -> list[str]:
        """Close every pass begun but never ended (its process died) as controller_crashed."""
        with self._reading():
            unended = [row[0] for row in self._conn.execute(
                "SELECT pass_id FROM records WHERE kind = 'pass_begin' EXCEPT "
                "SELECT pass_id FROM records WHERE kind = 'pass_end'")]
        recovered = []
        for pass_id in unended:
            with self._tx():
                session_id, begin = self._conn.execute(
                    "SELECT session_id, body FROM records WHERE kind = 'pass_begin' "
                    "AND pass_id = ?", (pass_id,)).fetchone()
                row = self._conn.execute(
                    "SELECT written_at, figures FROM progress WHERE pass_id = ?",
                    (pass_id,)).fetchone()
                ended_at, figures = (row[0], json.loads(row[1])) if row else (
                    json.loads(begin)["started_at"], PassStats().figures())
                self._end(pass_id, session_id, PassOutcome.controller_crashed, figures,
                          ended_at, None, [], recovered=True)
            recovered.append(pass_id)
        return recovered

    def _end(self, pass_id: str, session_id: str, outcome: PassOutcome,
             figures: dict[str, Any], ended_at: str, fault_code: int | None,
             fault_names: list[str], *, recovered: bool) -> None:
        body = {"outcome": outcome.value, "ended_at": ended_at, "fault_code": fault_code,
                "fault_names": fault_names, "stats": figures, "recovered": recovered}
        self._append("pass_end", session_id, pass_id, body)
        self._conn.execute("DELETE FROM progress WHERE pass_id = ?", (pass_id,))

    def _append(self, kind: str, session_id: str, pass_id: str | None,
                body: dict[str, Any]) -> None:
        last = self._conn.execute(
            "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        text = _canonical(body)
        written_at = _iso(datetime.now(UTC))
        digest = record_hash(seq, kind, session_id, pass_id, written_at, text, prev)
        self._conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (seq, kind, session_id, pass_id, written_at, text, prev, digest))
        self._conn.execute(
            "INSERT INTO chain_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) "
            "DO UPDATE SET seq = excluded.seq, hash = excluded.hash", (seq, digest))

    def _require_open_session(self, session_id: str) -> None:
        kinds = {row[0] for row in self._conn.execute(
            "SELECT kind FROM records WHERE session_id = ? AND kind IN "
            "('session_open', 'session_close')", (session_id,))}
        if "session_open" not in kinds:
            raise PassLogError(f"no session {session_id} in the pass log")
        if "session_close" in kinds:
            raise PassLogError(f"session {session_id} is closed; open a new session")

    def _require_open_pass(self, pass_id: str) -> str:
        row = self._conn.execute(
            "SELECT session_id FROM records WHERE kind = 'pass_begin' AND pass_id = ?",
            (pass_id,)).fetchone()
        if row is None:
            raise PassLogError(f"no pass {pass_id} in the pass log")
        if self._conn.execute("SELECT 1 FROM records WHERE kind = 'pass_end' AND pass_id = ?",
                              (pass_id,)).fetchone():
            raise PassLogError(f"pass {pass_id} has already ended")
        return row[0]

    def _iter_passes(self, session_id: str | None) -> Iterator[PassRecord]:
        where, args = ("AND b.session_id = ?", (session_id,)) if session_id else ("", ())
        with self._reading():
            rows = self._conn.execute(
                "SELECT b.pass_id, b.session_id, b.body, e.body FROM records b "
                "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
                f"WHERE b.kind = 'pass_begin' {where} ORDER BY b.seq", args).fetchall()
        for pass_id, sid, begin, end in rows:
            yield _pass(pass_id, sid, json.loads(begin), json.loads(end) if end else None)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock:
            if self._conn is None:
                raise PassLogError(f"the pass log {self.path} is closed")
            try:
                yield
            except sqlite3.Error as exc:
                raise self._error("read", exc) from exc

    @contextlib.contextmanager
    def _tx(self) -> Iterator[None]:
        """One durable transaction; nested uses join the outer one (for bulk writes)."""
        with self._lock:
            if self._conn is None:
                raise PassLogError(f"the pass log {self.path} is closed")
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                yield
                self._conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error("write", exc) from exc
                raise
            finally:
                self._depth = 0

    def _error(self, action: str, exc: sqlite3.Error) -> PassLogError:
        text = str(exc)
        low = text.lower()
        if "full" in low:
            hint = "the disk is full: free space on it"
        elif "readonly" in low or "read-only" in low:
            hint = "the file or its directory is read-only: check permissions and the mount"
        elif "locked" in low or "busy" in low:
            hint = "another process holds the file: stop it and retry"
        elif "not a database" in low or "malformed" in low:
            hint = "the file is not a pass log or is damaged: restore it from a backup"
        else:
            hint = "check the disk and the file"
        stop = " The needle must not run until the log can record." if action == "write" else ""
        return PassLogError(f"cannot {action} the pass log {self.path} ({text}): {hint}.{stop}")


# --- helpers -----------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("times in the pass log must be timezone-aware (e.g. datetime.now(UTC))")
    return moment.isoformat()


def _session(sid: str, o: dict[str, Any], c: dict[str, Any] | None, count: int) -> SessionRecord:
    return SessionRecord(
        session_id=sid, opened_at=o["opened_at"], technician=o["technician"],
        client_ref=o["client_ref"], session_kind=o["session_kind"], pen_serial=o["pen_serial"],
        firmware_version=o["firmware_version"], calibration_id=o["calibration_id"],
        profile_hash=o["profile_hash"], screening=o["screening"],
        closed_at=c["closed_at"] if c else None, summary=c["summary"] if c else None,
        pass_count=count,
    )


_NO_FIGURES: dict[str, Any] = PassStats().figures()


def _pass(pass_id: str, sid: str, b: dict[str, Any], e: dict[str, Any] | None) -> PassRecord:
    e = e or {}
    figures = e.get("stats") or _NO_FIGURES
    return PassRecord(
        pass_id=pass_id, session_id=sid, index=b["index"], zone=b["zone"],
        depth_mm=b["depth_mm"], speed_hz=b["speed_hz"], duty_pct=b["duty_pct"],
        period_ms=b["period_ms"], started_at=b["started_at"], ended_at=e.get("ended_at"),
        outcome=e.get("outcome"), fault_code=e.get("fault_code"),
        fault_names=e.get("fault_names") or [], recovered=bool(e.get("recovered")),
        samples=figures["samples"], depth_min_mm=figures["depth_min_mm"],
        depth_mean_mm=figures["depth_mean_mm"], depth_max_mm=figures["depth_max_mm"],
        speed_mean_hz=figures["speed_mean_hz"], strokes=figures["strokes"],
        impressions=figures["impressions"],
    )


_SQL_EXPORT = sqlite3.sqlite_version_info >= (3, 38)
_BEGIN_FIELDS = ("index", "zone", "depth_mm", "speed_hz", "duty_pct", "period_ms", "started_at")
_COUNT_FIELDS = ("samples", "strokes", "impressions")


def _export_sql(fmt: str) -> str:
    """One SELECT producing export rows: a JSON object per pass, or the CSV columns."""
    as_json = fmt == "jsonl"
    op = "->" if as_json else "->>"
    exprs = []
    for name in EXPORT_FIELDS:
        if name in ("session_id", "pass_id"):
            expr = f"b.{name}"
        elif name in SESSION_FIELDS:
            expr = f"o.body {op} '$.{name}'"
        elif name in _BEGIN_FIELDS:
            expr = f"b.body {op} '$.{name}'"
        elif name in ("ended_at", "outcome", "fault_code"):
            expr = f"e.body {op} '$.{name}'"
        elif name == "fault_names":
            expr = ("json(coalesce(e.body -> '$.fault_names', '[]'))" if as_json else
                    "coalesce((SELECT group_concat(value, ';') "
                    "FROM json_each(e.body, '$.fault_names')), '')")
        elif name == "recovered":
            flag = "CASE WHEN e.body ->> '$.recovered' THEN 'true' ELSE 'false' END"
            expr = f"json({flag})" if as_json else flag
        elif name in _COUNT_FIELDS:
            expr = (f"json(coalesce(e.body -> '$.stats.{name}', '0'))" if as_json
                    else f"coalesce(e.body ->> '$.stats.{name}', 0)")
        else:
            expr = f"e.body {op} '$.stats.{name}'"
        exprs.append(f"'{name}', {expr}" if as_json else expr)
    select = f"json_object({', '.join(exprs)})" if as_json else ", ".join(exprs)
    return (f"SELECT {select} FROM records b "
            "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = b.pass_id "
            "LEFT JOIN records o ON o.kind = 'session_open' AND o.session_id = b.session_id "
            "WHERE b.kind = 'pass_begin' ORDER BY b.seq")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(map(str, value))
    return value


__all__ = [
    "COUNTER_MODULUS", "EXPORT_FIELDS", "GENESIS_HASH", "MIGRATIONS", "SCHEMA_VERSION",
    "BrokenLink", "PassLog", "PassLogError", "PassOutcome", "PassRecord", "PassStats",
    "SessionRecord", "record_hash",
]
