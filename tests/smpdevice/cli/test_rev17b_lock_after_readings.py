"""Review 17 (b17b, fixed): a calibration database another program locked while a guided `smp
calibrate` ran (after its start-up check, `require_writable`) lost every gauge reading: after
the last verify reading the save waited SQLite's 5 s, then the command exited 3 with one line,
no report, nothing saved. docs/technicians.md: a locked database "stops the command there,
never after your readings". Now the save tries again (for a minute, saying so) and, the lock
let go, saves: exit 0, the report printed.

A technician (this test) types each gauge reading into a guided `smp calibrate`; at the last
verify prompt another program takes the calibration database's write lock, and lets it go once
the command says it tries the save again (its first try refused: SQLite's 5 s, the product's
wait), or has ended (at most 8 s).

The pen is the command's in-process simulator on virtual time: the lock and the save's retries
are the point and run on the wall clock; the needle's speed step is not. On the real clock (an
`smp sim` process beside it) a loaded CI starved one of the two processes for ~0.5 s in the
speed step and the 500 ms lease lapsed (LEASE_EXPIRED, the safe outcome), 1 run in 5 beside two
busy loops. The readings are a perfect gauge's: the simulated pen's hidden offset and gain
(`PenModel`, the same seed), at the actuator position each prompt prints."""

from __future__ import annotations

import os
import re
import select
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from simulators.pen_model import PenModel

SMP = str(Path(sys.executable).with_name("smp"))
DEADLINE_S = 60.0


PORT = "pensim://?seed=0&clock=virtual"  # the pen in `smp calibrate`'s process, virtual time
PEN = PenModel(seed=0)  # the same pen: its hidden offset and gain, what the gauge shows


def gauge_mm(actuator_mm: float) -> float:
    """What a perfect gauge reads at `actuator_mm` (0 with the tip in the cartridge)."""
    return round(max(0.0, PEN.true_depth_mm(actuator_mm)), 4)


def guided_run(data_dir: Path) -> tuple[int, str]:
    env = {**os.environ, "SMP_DATA_DIR": str(data_dir)}
    cal = subprocess.Popen([SMP, "calibrate", "--port", PORT, "-t", "ana",
                            "--spin-seconds", "0.5"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        return _typed(cal, data_dir / "calibrations.sqlite")
    finally:
        if cal.poll() is None:
            cal.kill()
            cal.wait(10)


def _typed(cal: subprocess.Popen, db: Path) -> tuple[int, str]:
    pending, out = b"", b""
    retried = threading.Event()
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        ready, _, _ = select.select([cal.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(cal.stdout.fileno(), 4096)
            if not chunk:
                break
            pending += chunk
            out += chunk
            if b"trying the save again" in out:
                retried.set()
        if not pending.rstrip().endswith(b"abort):"):
            continue
        label = [line for line in pending.decode().splitlines() if "Read the gauge" in line][-1]
        pending = b""
        value = gauge_mm(float(re.search(r"the actuator is at ([0-9.]+) mm", label).group(1)))
        if label.startswith("Verify at 1.5"):
            _lock_until_retried(db, cal, retried)
        cal.stdin.write(f"{value:.4f}\n".encode())
        cal.stdin.flush()
    return cal.wait(30), out.decode()


def _lock_until_retried(db: Path, cal: subprocess.Popen, retried: threading.Event) -> None:
    """Another program's write lock on the database, held until `retried` (the first save
    refused) or `cal` ends (at most 8 s)."""
    locker = sqlite3.connect(db, isolation_level=None, timeout=0, check_same_thread=False)
    try:
        locker.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:  # the command holds it itself: nothing to race
        locker.close()
        return

    def hold() -> None:
        end_s = time.monotonic() + 8.0
        while not retried.wait(0.02) and cal.poll() is None and time.monotonic() < end_s:
            pass
        locker.rollback()
        locker.close()

    threading.Thread(target=hold, daemon=True).start()


def test_a_lock_taken_during_the_run_does_not_lose_the_readings(tmp_path):
    rc, out = guided_run(tmp_path)
    db = tmp_path / "calibrations.sqlite"
    saved = sqlite3.connect(db).execute("SELECT count(*) FROM calibrations").fetchone()[0]
    assert "Verify at 1.5" in out, out[-2000:]  # the run reached its last reading
    assert saved == 1 and rc == 0 and "Depth points" in out, (
        f"exit {rc}, {saved} saved: the readings lost\n{out[-600:]}")
    assert "trying the save again" in out, out[-600:]  # the wait was said, not silent


def test_a_save_still_refused_ends_after_the_report_with_the_stores_exit_code(capsys):
    """A lock held past the retries: the report (every reading) first, then the store's one
    line and its exit code (3, README: a record file another program is using)."""
    import pytest

    from smpdevice.calibration.readings import Point
    from smpdevice.calibration.report import CalibrationReport, CalibrationSettings
    from smpdevice.calibration.store import CalibrationStoreBusy
    from smpdevice.cli.calibrate import report_outcome

    report = CalibrationReport(pen_serial="SMP-TESTPEN1", firmware_version="1.0",
                               technician="ana", gauge="a dial gauge",
                               settings=CalibrationSettings(),
                               points=[Point(0.5, 0.1), Point(1.0, 0.6), Point(1.5, 1.1)])
    report.save_error = CalibrationStoreBusy("cannot use the calibration database c.sqlite: "
                                             "another program is using it")
    report.problems.append(f"not saved: {report.save_error}")
    with pytest.raises(CalibrationStoreBusy) as raised:
        report_outcome(report, "SMP-TESTPEN1", retry="smp calibrate --port P -t ana",
                       saved_to="c.sqlite")
    out = capsys.readouterr().out
    assert "Depth points" in out and "not saved:" in out, out
    assert raised.value.exit_code == 3
    assert "another program" in str(raised.value) and "smp calibrate --port P" in str(
        raised.value), raised.value
