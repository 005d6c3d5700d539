"""Review 17 (tech): a calibration database another program holds locked is refused before
the pen moves, as README says of a file another program is using: exit 3, "another program is
using it ... Try again once it is done". It was found only at the save, after the whole run
(zero, depth, the needle spun at three speeds, verify): "failed: database is locked. Check
free disk space and permissions; nothing was saved", exit 2, every reading lost.

`CalibrationStore.require_writable` (what `smp calibrate` calls before it connects) now takes
the write lock for a moment. The other program holds the lock through the whole command, so
the product's wait for it (readonly.BUSY_WAIT_S, 5 s) is cut to 0.2 s: refused either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.errors import SmpError
from smpdevice.records import readonly as readonly_db
from tests.smpdevice.shell import calibrated, smp

PORT = "pensim://?clock=virtual"
HOLD = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")   # another program writing: holds the write lock
print("locked", flush=True)
sys.stdin.read()                # until the test is done
"""


def test_a_locked_calibration_database_is_refused_before_the_pen_moves(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(readonly_db, "BUSY_WAIT_S", 0.2)  # `smp` runs in this process
    data = calibrated(tmp_path / "data", PORT)
    db = data / "calibrations.sqlite"
    before = [c.calibration_id for c in CalibrationStore(db, readonly=True).list()]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "none.toml"), SMP_LOG_LEVEL="error")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        done = smp(["calibrate", "--port", PORT, "--auto", "-t", "ana", "--db", str(db)],
                   env=env, cwd=tmp_path)
    finally:
        holder.communicate("")
    assert done.returncode == 3, done.stdout + done.stderr  # README: exit 3, not 2
    assert "Step 1" not in done.stdout, done.stdout[-300:]  # the pen never moved
    assert "another program is using it" in done.stderr, done.stderr
    assert "Try again once it is done" in done.stderr, done.stderr
    assert "disk space" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr  # one line
    # the file is untouched and, once the other program is done, usable again
    assert [c.calibration_id for c in CalibrationStore(db, readonly=True).list()] == before
    CalibrationStore(db).require_writable()


def test_a_damaged_calibration_database_says_so_not_disk_space(tmp_path: Path):
    """A file that is no SQLite database in the data directory (where no `--db` check looks
    first): the writer's open says it is damaged and to restore it, not "check free disk
    space ... nothing was saved"."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "calibrations.sqlite").write_bytes(b"SQLite format 3\0" + os.urandom(4096))
    for readonly in (False, True):
        try:
            CalibrationStore(data / "calibrations.sqlite", readonly=readonly).latest("SMP-1")
        except SmpError as exc:
            message = str(exc)
        else:
            raise AssertionError("a damaged calibration database was read as no calibrations")
        assert "damaged or not an SQLite database" in message, message
        assert "Restore it from a backup" in message, message
        assert "disk space" not in message, message
