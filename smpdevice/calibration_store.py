"""Durable record of calibrations: an SQLite file next to the pass log.

`calibrations.sqlite` in the data directory (`smpdevice.paths.data_dir()`), or an explicit path
(`--db PATH`). WAL journal and `synchronous=FULL`, so a calibration reported as saved survives a
power cut. Each row keeps the whole `Calibration` as JSON (points, residuals, technician) plus
indexed columns for the queries.

`latest(serial)` returns the newest calibration even if expired, so the controller can say
"expired" rather than "missing"; `latest_valid(serial)` only one that may be used now.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from smpdevice.calibration import Calibration
from smpdevice.errors import SmpError
from smpdevice.paths import data_dir

CALIBRATIONS_NAME = "calibrations.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    calibration_id TEXT PRIMARY KEY,
    pen_serial     TEXT NOT NULL,
    technician     TEXT NOT NULL,
    created_at     TEXT NOT NULL,   -- ISO 8601 UTC; sorts as text
    expires_at     TEXT NOT NULL,
    offset_mm      REAL NOT NULL,
    gain           REAL NOT NULL,
    record_json    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS calibrations_pen ON calibrations (pen_serial, created_at);
"""


class CalibrationStoreError(SmpError):
    """The calibration database cannot be read or written."""


def calibrations_path(explicit: str | os.PathLike | None = None) -> Path:
    """`explicit` if given, else `<data dir>/calibrations.sqlite`."""
    if explicit:
        return Path(explicit).expanduser()
    return data_dir() / CALIBRATIONS_NAME


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class CalibrationStore:
    """Save and look up calibrations. Each call opens its own short connection (thread-safe)."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = calibrations_path(path)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self.path.parent.is_dir():
                raise CalibrationStoreError(
                    f"cannot open the calibration database {self.path}: the directory "
                    f"{self.path.parent} does not exist. Create it or pass another --db PATH."
                )
            db = sqlite3.connect(self.path, timeout=5.0)
        except sqlite3.Error as exc:
            raise CalibrationStoreError(
                f"cannot open the calibration database {self.path}: {exc}. "
                "Check the path and its permissions, or pass another --db PATH."
            ) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        except sqlite3.Error as exc:
            raise CalibrationStoreError(
                f"the calibration database {self.path} failed: {exc}. "
                "Check free disk space and permissions; nothing was saved."
            ) from exc
        finally:
            db.close()

    # ------------------------------------------------------------------ writes

    def save(self, calibration: Calibration) -> None:
        """Store `calibration` durably (raises CalibrationStoreError if it could not be)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    calibration.calibration_id,
                    calibration.pen_serial,
                    calibration.technician,
                    _iso(calibration.created_at),
                    _iso(calibration.expires_at),
                    calibration.offset_mm,
                    calibration.gain,
                    calibration.model_dump_json(),
                ),
            )

    # ------------------------------------------------------------------ reads

    def _rows(self, sql: str, args: tuple) -> list[Calibration]:
        with self._connect() as db:
            rows = db.execute(sql, args).fetchall()
        out = []
        for calibration_id, record_json in rows:
            try:
                out.append(Calibration.model_validate_json(record_json))
            except ValidationError as exc:
                raise CalibrationStoreError(
                    f"calibration {calibration_id} in {self.path} is damaged "
                    f"({exc.error_count()} invalid fields). Recalibrate the pen."
                ) from exc
        return out

    def list(self, pen_serial: str | None = None, limit: int | None = None) -> list[Calibration]:
        """Calibrations, newest first; only `pen_serial`'s if given."""
        sql = "SELECT calibration_id, record_json FROM calibrations"
        args: tuple = ()
        if pen_serial is not None:
            sql += " WHERE pen_serial = ?"
            args = (pen_serial,)
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql, args)

    def latest(self, pen_serial: str) -> Calibration | None:
        """The newest calibration of `pen_serial`, expired or not."""
        found = self.list(pen_serial, limit=1)
        return found[0] if found else None

    def latest_valid(self, pen_serial: str, now: datetime | None = None) -> Calibration | None:
        """The newest calibration of `pen_serial` that has not expired at `now`."""
        found = self._rows(
            "SELECT calibration_id, record_json FROM calibrations "
            "WHERE pen_serial = ? AND expires_at > ? ORDER BY created_at DESC, rowid DESC LIMIT 1",
            (pen_serial, _iso(now or datetime.now(UTC))),
        )
        return found[0] if found else None

    def get(self, calibration_id: str) -> Calibration | None:
        found = self._rows(
            "SELECT calibration_id, record_json FROM calibrations WHERE calibration_id = ?",
            (calibration_id,),
        )
        return found[0] if found else None
