"""The calibration store's file: its schema and migrations, how SQLite's errors on it read to a
person, and the checks of the store's read arguments (`CalibrationStore` in `store`)."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from pathlib import Path

from smpdevice import checks
from smpdevice.control.calibration import Calibration, CalibrationError
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.records.readonly import connect_readonly

SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    calibration_id TEXT PRIMARY KEY,
    pen_serial     TEXT NOT NULL,
    technician     TEXT NOT NULL,
    created_at     TEXT NOT NULL,   -- ISO 8601 UTC; sorts as text
    expires_at     TEXT NOT NULL,
    offset_mm      REAL NOT NULL,
    gain           REAL NOT NULL,
    record_json    TEXT NOT NULL,
    simulated      INTEGER,         -- 1 simulator, 0 real pen, NULL unknown (older rows)
    saved_seq      INTEGER          -- 1, 2, 3 ... in the order saved: what "newest" means
);
CREATE INDEX IF NOT EXISTS calibrations_pen ON calibrations (pen_serial, created_at);
"""
# Files from before `saved_seq`: their rows were inserted in the order saved (rowid).
ADD_SAVED_SEQ = (
    "ALTER TABLE calibrations ADD COLUMN saved_seq INTEGER",
    "UPDATE calibrations SET saved_seq = rowid",
)
INDEXES = {"calibrations", "calibrations_pen", "calibrations_saved"}  # + the table: current
SEQ_INDEX = "CREATE INDEX IF NOT EXISTS calibrations_saved ON calibrations (pen_serial, saved_seq)"
# Files from before the `simulated` column: add it; their rows stay NULL ("unknown") unless
# their JSON says (a Calibration model with the field wrote it).
ADD_SIMULATED = (
    "ALTER TABLE calibrations ADD COLUMN simulated INTEGER",
    "UPDATE calibrations SET simulated = json_extract(record_json, '$.simulated') "
    "WHERE json_type(record_json, '$.simulated') IN ('true', 'false')",
)

# SQLite's primary result codes that have their own advice
_BUSY, _LOCKED, _CORRUPT, _NOTADB = 5, 6, 11, 26


class CalibrationStoreError(SmpError):
    """The calibration database cannot be read or written."""


class CalibrationStoreBusy(CalibrationStoreError):
    """Another program holds the calibration database locked (after SQLite's 5 s wait): exit
    3, as README says of a record file another program is using; try again once it is done."""

    exit_code = ExitCode.RECORD_ERROR


def migrate(db: sqlite3.Connection) -> None:
    """Create the schema, or bring an older file's up to date."""
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(calibrations)")}
    if "simulated" not in columns:
        for statement in ADD_SIMULATED:
            db.execute(statement)
    if "saved_seq" not in columns:
        for statement in ADD_SAVED_SEQ:
            db.execute(statement)
    db.execute(SEQ_INDEX)


class StoredAlready(CalibrationError):
    """A save that must be the pen's newest (an import's) found, inside its own transaction,
    the calibration already stored (`newest` None) or a newer one of the pen (`newest`)."""

    def __init__(self, message: str, newest: Calibration | None) -> None:
        super().__init__(message)
        self.newest = newest


def refuse_superseding(db: sqlite3.Connection, calibration: Calibration, path: Path) -> None:
    """Under the save's write lock (BEGIN IMMEDIATE): StoredAlready when `calibration` is
    stored, or the pen's newest stored one (the last saved, as `latest`) was made at or after
    it, so no save between an import's look and its insert can be superseded silently."""
    cid, serial = calibration.calibration_id, calibration.pen_serial
    if db.execute("SELECT 1 FROM calibrations WHERE calibration_id = ?", (cid,)).fetchone():
        raise StoredAlready(f"calibration {cid} is already saved in {path}", None)
    row = db.execute("SELECT calibration_id, record_json FROM calibrations WHERE pen_serial = ? "
                     "ORDER BY saved_seq DESC, rowid DESC LIMIT 1", (serial,)).fetchone()
    if row is None:
        return
    try:
        newest = Calibration.model_validate_json(row[1])
    except (ValueError, SmpError) as exc:  # pydantic's ValidationError is a ValueError
        raise CalibrationStoreError(f"calibration {row[0]} in {path} is damaged ({exc}"[:300]
                                    + "): which is newest cannot be told; nothing was saved. "
                                    "Recalibrate the pen") from None
    if newest.created_at >= calibration.created_at:
        raise StoredAlready(f"pen {serial}'s newest stored calibration {newest.calibration_id}"
                            f" is not older than {cid}", newest)


def sqlite_refusal(path: Path, exc: sqlite3.Error, *,
                   writing: bool) -> CalibrationStoreError | None:
    """The refusal of a file another program holds locked, or that is no (or a damaged) SQLite
    database, with what to do; None for other errors (the caller's own advice)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    done = "nothing was saved" if writing else "nothing was changed"
    if code in (_BUSY, _LOCKED) or "database is locked" in str(exc):
        return CalibrationStoreBusy(
            f"cannot use the calibration database {path} ({exc}): another program is using it "
            f"(it holds the file locked); {done}. Try again once it is done, or pass another "
            "--db PATH.")
    if code in (_CORRUPT, _NOTADB):
        return CalibrationStoreError(
            f"cannot open the calibration database {path} ({exc}): it is damaged or not an "
            "SQLite database; nothing was changed. Restore it from a backup, or pass another "
            "--db PATH.")
    return None


def columns_of(path: Path) -> set[str]:
    """The columns of the calibrations table, read as `schema_names` reads the schema: with no
    `-wal` or `-journal` beside the file, `?immutable=1` (nothing created beside it, also on a
    full or read-only disk); else as every reader reads it."""
    if any(path.with_name(path.name + side).exists() for side in ("-wal", "-journal")):
        reader = connect_readonly(path)
        conn = reader.conn
    else:
        reader = None
        conn = sqlite3.connect(path.resolve().as_uri() + "?immutable=1", uri=True)
    try:
        return {row[1] for row in conn.execute("PRAGMA table_info(calibrations)")}
    finally:
        if reader is not None:
            reader.close()
        else:
            conn.close()


def simulated_of(calibration: object) -> int | None:
    flag = getattr(calibration, "simulated", None)  # the field of a Calibration that has it
    return None if flag is None else int(bool(flag))


def read_only_fs(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False


# ----------------------------------------------------------------------------- read arguments

SERIAL_ALLOWED = "a pen serial as text (`smp info --port PORT` shows it)"


def pen_serial(value: object, *, optional: bool = False) -> None:
    """A pen serial is a str (None too where `optional`): a number or a list would read as
    "no calibration" (calibrate first) or as a damaged database."""
    if optional and value is None:
        return
    checks.instance("pen_serial", value, str,
                    SERIAL_ALLOWED + (", or None for every pen" if optional else ""))


def calibration_id(value: object) -> None:
    checks.instance("calibration_id", value, str,
                    "a calibration id as text (`smp calibrations list` shows them)")


def limit(value: object) -> None:
    """A whole number from 0, or None; above SQLite's 64-bit LIMIT it means "all"."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 0):
        checks.whole_number("limit", value, 0, 2**63 - 1)


def aware_now(value: object) -> None:
    """`now` is a timezone-aware datetime or None: a naive one is a local clock's time or UTC,
    nobody can tell which, and read as UTC it would move expiry by the UTC offset."""
    allowed = "a timezone-aware datetime, or None"
    checks.instance("now", value, (datetime, type(None)), allowed)
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise checks.InvalidArgument(
            f"now={value!r} is refused: it has no time zone; allowed: {allowed} (e.g. "
            "datetime.now(UTC)). Correct now to an allowed value.")
