"""A real kept calibration for the import tests (review 18c): `smp calibrate --auto` on a
virtual-clock simulated pen saved to a side database, then kept as the unsaved file `smp
calibrate` writes (`unsaved.write_unsaved`: signed with this test run's installation key, the
pen's range the run saw)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.unsaved import write_unsaved
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration

PORT = "pensim://?clock=virtual"
SIM_RANGE_HZ = (30.0, 180.0)  # the simulator's speed range (savable.MIN_SPAN_HZ's note)


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


def real_calibration(data: Path) -> Calibration:
    """The calibration of a real passed `smp calibrate --auto` run (its side database gone)."""
    side = data / "side.sqlite"
    made = smp("calibrate", "--port", PORT, "--auto", "--spin-seconds", "0.3", "--db", str(side))
    assert made.exit_code == 0, made.output[-800:]
    cal = CalibrationStore(side, readonly=True).list()[0]
    for name in ("", "-wal", "-shm"):
        Path(str(side) + name).unlink(missing_ok=True)
    return cal


def kept_file(data: Path) -> tuple[Path, str]:
    """(the unsaved-calibration file in `data`, the pen serial) of a real passed run."""
    cal = real_calibration(data)
    return write_unsaved(cal, SIM_RANGE_HZ, data), cal.pen_serial
