"""Review 17 (b17b, fixed): `smp calibrate --verify-only`, which only reads the stored calibration
("Saves nothing", docs/technicians.md), took the calibration database's write lock before it
started (`require_writable`): while another program writes to it (holds its write lock), the
check of a pen before a session is refused after 5 s, exit 3 "another program is using it ...
nothing was saved", though a reader of the WAL database is never blocked by a writer (`smp
calibrations list` reads it at the same moment)."""

from __future__ import annotations

import os
import sqlite3

from tests.smpdevice import shell

PORT = "pensim://?clock=virtual"


def test_verify_only_reads_beside_a_writer(tmp_path):
    """`smp` in this process (tests/smpdevice/shell.py): SQLite's locks hold between two
    connections of one process as between two processes, so the writer's lock is the same
    obstacle; `smp calibrate --auto`'s data directory is made once per test process."""
    data = shell.calibrated(tmp_path / "data")
    env = {**os.environ, "SMP_DATA_DIR": str(data)}
    writer = sqlite3.connect(data / "calibrations.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another program writing
    try:
        listed = shell.smp(["calibrations", "list"], env=env)
        verified = shell.smp(["calibrate", "--port", PORT, "--auto", "--verify-only"], env=env)
    finally:
        writer.rollback()
        writer.close()
    assert listed.returncode == 0 and "valid" in listed.stdout, listed.stderr  # readers read
    assert verified.returncode == 0, (verified.returncode, verified.stderr[-400:])


def test_verify_only_creates_no_database(tmp_path):
    """Only a reader: a station with no calibrations yet is told to calibrate, nothing made."""
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path)}
    verified = shell.smp(["calibrate", "--port", PORT, "--auto", "--verify-only"], env=env)
    assert verified.returncode == 2 and "has no calibration" in verified.stderr, verified.stderr
    assert not (tmp_path / "calibrations.sqlite").exists()
