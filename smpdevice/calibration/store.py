"""Durable record of calibrations: an SQLite file next to the pass log.

`calibrations.sqlite` in the data directory (`smpdevice.paths.data_dir()`), or an explicit path
(`--db PATH`). WAL journal and `synchronous=FULL`, so a calibration reported as saved survives a
power cut. Each row keeps the whole `Calibration` as JSON (points, residuals, technician) plus
indexed columns for the queries.

`latest(serial)` returns the newest calibration even if expired, so the controller can say
"expired" rather than "missing": the pen's current one; `latest_valid(serial)` that one only
if it may be used now, else None (never an older one it superseded: `smp run` would not take
it). The read calls refuse an argument of the wrong type (`InvalidArgument`).
"Newest" is the one saved last (`saved_seq`, a counter of this file), never the `created_at`
a calibration carries: that is the clock of the PC that made it, and a clock that ran ahead
(then corrected) would let a superseded calibration shadow every later one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from smpdevice.calibration import store_sql as argcheck
from smpdevice.calibration.checked import to_store
from smpdevice.calibration.fit import check_stored
from smpdevice.calibration.savable import check_savable
from smpdevice.calibration.store_sql import (  # the errors: importable from here as before
    INDEXES,
    CalibrationStoreBusy,  # noqa: F401 (its users)
    CalibrationStoreError,
    columns_of,
    migrate,
    read_only_fs,
    refuse_superseding,
    simulated_of,
    sqlite_refusal,
)
from smpdevice.config import user_path
from smpdevice.control.calibration import Calibration, CalibrationError, today_utc
from smpdevice.errors import SmpError
from smpdevice.paths import data_dir, require_database
from smpdevice.records import readonly as readonly_db  # BUSY_WAIT_S, read at each open
from smpdevice.records.files import (
    NotAFileError,
    private_file,
    require_regular_file,
    tighten_siblings,
)
from smpdevice.records.readonly import connect_readonly, schema_names

CALIBRATIONS_NAME = "calibrations.sqlite"
_WHERE_THEY_ARE = " (smp calibrate saves them in calibrations.sqlite in the data directory)"


@dataclass(frozen=True)
class CalibrationEntry:
    """A stored calibration and whether it was made on the simulator (None: unknown, a row
    saved before smpdevice recorded it)."""

    calibration: Calibration
    simulated: bool | None


Entries = list[CalibrationEntry]  # named here: inside the class, `list` is the method


Damaged = list[tuple[str, str]]  # (calibration id, why): damaged rows a listing names


def calibrations_path(explicit: str | os.PathLike | None = None, *,
                      create: bool = True) -> Path:
    """`explicit` if given, else `<data dir>/calibrations.sqlite` (the directory made by a
    writer only: a reader passes `create=False`)."""
    if explicit:  # a file that is no database is refused before it is locked or re-moded
        return require_database(user_path(explicit), "a calibration database")
    return data_dir(create) / CALIBRATIONS_NAME


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class CalibrationStore:
    """Save and look up calibrations. Each call opens its own short connection (thread-safe).

    `readonly=True` only reads (listings, backups on read-only media): it creates nothing, a
    missing file or table reads as no calibrations, and `save` is refused.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, readonly: bool = False) -> None:
        if isinstance(path, (str, os.PathLike)) and "\0" in str(os.fspath(path)):
            from smpdevice.checks import InvalidArgument  # a bare ValueError from the OS else

            raise InvalidArgument(f"{str(os.fspath(path))!r}: the calibration database's path "
                                  "holds a NUL character (\\0), which no file name can; give "
                                  "its path without it. Nothing was opened.")
        self.path = calibrations_path(path, create=not readonly)
        self.readonly = readonly
        self._explicit = bool(path)
        names = self._names()
        if names and "calibrations" not in names:  # a pass log given as --db: left as it is
            raise self._foreign(", or a new file to create one. Nothing was written." if not
                                readonly else _WHERE_THEY_ARE)
        if not readonly and not self._current(names):
            self.require_writable()

    def require_writable(self) -> None:
        """Open the file to write now, creating or migrating its schema, and take its write
        lock for a moment: a command that will save (`smp calibrate`) calls it first, so a
        read-only disk, a file it may not write or one another program holds locked fails
        before the pen moves, not at the save. (A writer store that only reads, as `smp
        run`'s, opens nothing to write until it saves.)"""
        with self._connect() as db:
            tables = {row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "calibrations" not in tables:  # a pass log given as --db
                raise self._foreign(", or a new file to create one. Nothing was written.")
            migrate(db)
            db.commit()
            db.execute("BEGIN IMMEDIATE")  # waits out a writer as a save would, then refuses
            db.rollback()

    def _names(self) -> list[str] | None:
        """The names in the file's schema, looked at without creating anything beside it;
        None when there is no database yet (no file, an empty one) or it cannot be looked at
        so (the open that follows says why)."""
        try:
            if not self._is_file() or self.path.stat().st_size == 0:
                return None
            return schema_names(self.path)
        except (OSError, sqlite3.Error):
            return None

    def _current(self, names: list[str] | None) -> bool:
        """Whether the file already holds the whole current schema, looked at without writing:
        then a writer opens nothing to write until it saves, so `smp run` on a read-only or
        full disk reads its calibrations and the pass log says why it cannot record."""
        if names is None or not set(names) >= INDEXES:
            return False
        try:
            columns = columns_of(self.path)
        except (OSError, sqlite3.Error):
            return False  # the writer's open says what is wrong
        tighten_siblings(self.path, ("", "-wal", "-shm"))  # 0600, as a writer's open makes it
        return columns >= {"simulated", "saved_seq"}

    def _foreign(self, todo: str) -> CalibrationStoreError:
        return CalibrationStoreError(f"{self.path} is an SQLite file but not a calibration "
                                     f"database; give the path of one{todo}")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection (also on read-only media; writers read this way too); None
        when there is nothing to read yet (no file, or an empty database)."""
        if not self.path.parent.is_dir():
            if not self._explicit:  # a station that has no data directory yet: none saved
                yield None
                return
            raise CalibrationStoreError(
                f"cannot open the calibration database {self.path}: the directory "
                f"{self.path.parent} does not exist. Give the right --db PATH."
            )
        if not self._is_file():  # a directory is refused, not read as "no calibrations"
            yield None
            return
        try:
            reader = connect_readonly(self.path)
        except sqlite3.Error as exc:
            raise sqlite_refusal(self.path, exc, writing=False) or CalibrationStoreError(
                f"cannot open the calibration database {self.path}: {exc}. "
                "Check the path and its permissions, or pass another --db PATH."
            ) from exc
        try:
            tables = {row[0] for row in reader.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "calibrations" not in tables:  # a pass log given as --db
                raise self._foreign(_WHERE_THEY_ARE)
            yield reader.conn if tables else None
        except sqlite3.Error as exc:
            raise sqlite_refusal(self.path, exc, writing=False) or CalibrationStoreError(
                f"cannot read the calibration database {self.path}: {exc}. "
                "Check the file, or restore it from a backup."
            ) from exc
        finally:
            reader.close()

    def _is_file(self) -> bool:
        """Whether the database file exists; CalibrationStoreError (exit 2) when the path is
        a directory, a device or a pipe."""
        try:
            return require_regular_file(self.path)
        except NotAFileError as exc:
            raise CalibrationStoreError(f"cannot open the calibration database: {exc}") from None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise CalibrationStoreError(
                f"the calibration database {self.path} was opened read-only; nothing was saved."
            )
        try:
            if not self.path.parent.is_dir():
                raise CalibrationStoreError(
                    f"cannot open the calibration database {self.path}: the directory "
                    f"{self.path.parent} does not exist. Create it or pass another --db PATH."
                )
            self._is_file()  # a directory given as --db is refused, its mode untouched
            private_file(self.path)  # 0600 before SQLite makes it and its -wal, -shm
            db = sqlite3.connect(self.path, timeout=readonly_db.BUSY_WAIT_S)
        except OSError as exc:
            raise CalibrationStoreError(
                f"cannot open the calibration database {self.path}: {exc.strerror or exc}. "
                "Check the path and its permissions, or pass another --db PATH."
            ) from exc
        except sqlite3.Error as exc:
            raise sqlite_refusal(self.path, exc, writing=True) or CalibrationStoreError(
                f"cannot open the calibration database {self.path}: {exc}. "
                "Check the path and its permissions, or pass another --db PATH."
            ) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            tighten_siblings(self.path)
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.Error as exc:
            if (refused := sqlite_refusal(self.path, exc, writing=True)) is not None:
                raise refused from exc
            if read_only_fs(self.path.parent):
                raise CalibrationStoreError(
                    f"the calibration database {self.path} is on a read-only file system; "
                    "nothing was saved. Remount it read-write or pass another --db PATH."
                ) from exc
            raise CalibrationStoreError(
                f"the calibration database {self.path} failed: {exc}. "
                "Check free disk space and permissions; nothing was saved."
            ) from exc
        finally:
            db.close()

    # ------------------------------------------------------------------ writes

    def save(self, calibration: Calibration, *,
             speed_range_hz: tuple[float, float] | None = None, newest: bool = False) -> None:
        """Store `calibration` durably (CalibrationStoreError if it could not be). Checked whole
        first, fit points too, as its readers will, and its speed check as every run's is
        (`savable.check_savable`: at the station's three speeds of `speed_range_hz`, the pen's
        (min, max) Hz, when given): CalibrationError, nothing stored, if not. `newest` (an
        import's): `StoredAlready`, nothing stored, when the store holds it or a calibration
        of the pen made at or after it, looked at in the save's own write transaction."""
        calibration = to_store(calibration)  # a model_copy skipped pydantic's checks
        check_savable(calibration, speed_range_hz)  # the run paths' rule: one place
        with self._connect() as db:
            if newest:  # the write lock first: no save can come between the look and insert
                db.execute("BEGIN IMMEDIATE")
                refuse_superseding(db, calibration, self.path)
            db.execute(
                "INSERT INTO calibrations (calibration_id, pen_serial, technician, created_at, "
                "expires_at, offset_mm, gain, record_json, simulated, saved_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "(SELECT COALESCE(MAX(saved_seq), 0) + 1 FROM calibrations))",
                (
                    calibration.calibration_id,
                    calibration.pen_serial,
                    calibration.technician,
                    _iso(calibration.created_at),
                    _iso(calibration.expires_at),
                    calibration.offset_mm,
                    calibration.gain,
                    calibration.model_dump_json(),
                    simulated_of(calibration),
                ),
            )

    # ------------------------------------------------------------------ reads

    def _rows(self, tail: str, args: tuple) -> list[Calibration]:
        return [entry.calibration for entry in self._entries(tail, args)]

    def _entries(self, tail: str, args: tuple,
                 damaged: Damaged | None = None) -> Entries:
        """Rows of `SELECT ... FROM calibrations <tail>` (tail: WHERE/ORDER/LIMIT; `{newest}`
        in it orders newest, i.e. last saved, first). A damaged row is refused, or, given a
        `damaged` list (a listing), added to it as (id, why) and left out."""
        with self._read() as db:
            if db is None:
                rows = []
            else:
                columns = {row[1] for row in db.execute("PRAGMA table_info(calibrations)")}
                flag = "simulated" if "simulated" in columns else "NULL"  # an older file
                # an older file read-only: its rows were inserted in the order saved
                tail = tail.replace("{newest}", "saved_seq DESC, rowid DESC"
                                    if "saved_seq" in columns else "rowid DESC")
                rows = db.execute("SELECT calibration_id, record_json, "
                                  f"{flag} FROM calibrations {tail}", args).fetchall()
        out = []
        for calibration_id, record_json, simulated in rows:
            try:
                calibration = Calibration.model_validate_json(record_json)
                check_stored(calibration)  # its own fit points, three at least
                out.append(CalibrationEntry(calibration,
                                            None if simulated is None else bool(simulated)))
            except (ValidationError, ValueError, SmpError) as exc:
                # The model's own checks (SmpError) also refuse a damaged row.
                detail = (f"{exc.error_count()} invalid fields" if isinstance(exc, ValidationError)
                          else str(exc))
                if damaged is not None:
                    damaged.append((str(calibration_id), detail))
                    continue
                raise CalibrationStoreError(
                    f"calibration {calibration_id} in {self.path} is damaged "
                    f"({detail}). Recalibrate the pen."
                ) from exc
        return out

    def list(self, pen_serial: str | None = None, limit: int | None = None) -> list[Calibration]:
        """Calibrations, newest (last saved) first; only `pen_serial`'s if given."""
        argcheck.pen_serial(pen_serial, optional=True)
        argcheck.limit(limit)
        return [entry.calibration for entry in self.entries(pen_serial, limit)]

    def entries(self, pen_serial: str | None = None, limit: int | None = None,
                damaged: Damaged | None = None) -> Entries:
        """Like `list`, with each calibration's `simulated` flag (for listings and exports);
        `damaged`: see `_entries`."""
        argcheck.pen_serial(pen_serial, optional=True)
        argcheck.limit(limit)
        sql = ""
        args: tuple = ()
        if pen_serial is not None:
            sql += " WHERE pen_serial = ?"
            args = (pen_serial,)
        sql += " ORDER BY {newest}"
        if limit is not None:  # SQLite's LIMIT is a 64-bit integer: more means "all"
            sql += f" LIMIT {min(int(limit), 2**63 - 1)}"
        return self._entries(sql, args, damaged)

    def latest(self, pen_serial: str) -> Calibration | None:
        """The newest calibration of `pen_serial`, expired or not: the pen's current one."""
        argcheck.pen_serial(pen_serial)
        found = self.list(pen_serial, limit=1)
        return found[0] if found else None

    def latest_valid(self, pen_serial: str, now: datetime | None = None) -> Calibration | None:
        """The pen's current (newest) calibration if it may be used at `now` (neither expired
        nor future-dated: the check arming makes), else None. Never an older one: a newer
        calibration supersedes it, so `smp run` would not take it either."""
        argcheck.pen_serial(pen_serial)
        argcheck.aware_now(now)
        current = self.latest(pen_serial)
        if current is None:
            return None
        try:
            current.check_for(pen_serial, now or today_utc())
        except CalibrationError:
            return None
        return current

    def get(self, calibration_id: str) -> Calibration | None:
        entry = self.entry(calibration_id)
        return entry.calibration if entry else None

    def entry(self, calibration_id: str) -> CalibrationEntry | None:
        argcheck.calibration_id(calibration_id)
        found = self._entries("WHERE calibration_id = ?", (calibration_id,))
        return found[0] if found else None

    def current_ids(self, pen_serials: Iterable[str]) -> dict[str, str]:
        """Each pen's current (newest saved) calibration id, damaged rows too: a listing
        marks every older row superseded."""
        out: dict[str, str] = {}
        with self._read() as db:
            if db is None:
                return out
            columns = {row[1] for row in db.execute("PRAGMA table_info(calibrations)")}
            order = "saved_seq DESC, rowid DESC" if "saved_seq" in columns else "rowid DESC"
            for serial in dict.fromkeys(pen_serials):
                row = db.execute(f"SELECT calibration_id FROM calibrations WHERE pen_serial = ? "
                                 f"ORDER BY {order} LIMIT 1", (serial,)).fetchone()
                if row is not None:
                    out[serial] = row[0]
        return out
