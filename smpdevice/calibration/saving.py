"""The save at the end of a calibration run that passed, without losing the run.

The store was checked writable before the pen moved (`arguments.run_arguments`), but another
program can still take its write lock while the technician reads the gauge. The save then
tries again for `SAVE_RETRY_S` (each try waits SQLite's own 5 s), saying so, and stops early
once the run must end (`should_stop`). A save that is still refused never ends the run with a
bare error: the report keeps every reading, the calibration measured is kept in
`report.unsaved` (an API caller may `store.save(report.unsaved)` once the lock is gone), the
refusal is a problem in the report ("not saved: ..."), and `report.save_error` is the store's
own error (exit 3 for a locked file) for the command to end with after printing the report.
A refusal of the calibration itself (`CalibrationError`: the store's whole check, the
service's `calibration.save`) is a failed run, reported (exit 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from smpdevice.calibration.savable import check_savable
from smpdevice.calibration.store_sql import CalibrationStoreBusy, CalibrationStoreError
from smpdevice.control.calibration import Calibration, CalibrationError

if TYPE_CHECKING:
    from smpdevice.calibration.report import CalibrationReport
    from smpdevice.calibration.stopping import StopCheck

SAVE_RETRY_S = 60.0  # a lock another program holds longer than this: the report, exit 3


def save_run(store: object, calibration: Calibration, report: CalibrationReport,
             echo: Callable[[str], None], stop: StopCheck,
             clock: Callable[[], float] = time.monotonic,
             speed_range_hz: tuple[float, float] | None = None) -> bool:
    """Save `calibration` to `store`: True once saved; False (the report says why) when
    refused. Other errors (the link to a service lost, Ctrl-C) are raised as they are.
    `speed_range_hz`: the pen's (min, max); the station's speed check is checked at its
    speeds (`savable.check_savable`, the store's own rule) before any store is asked."""
    save = store.save  # type: ignore[attr-defined]  # run_arguments checked it is there
    end = clock() + SAVE_RETRY_S
    while True:
        try:
            check_savable(calibration, speed_range_hz)
            save(calibration)
            return True
        except CalibrationStoreBusy as exc:
            left_s = end - clock()
            if left_s <= 0 or stop.reason() is not None:
                return _unsaved(report, calibration, exc)
            echo(f"  the calibration database is locked by another program; trying the save "
                 f"again (for {left_s:.0f} s more). Your readings are kept.")
        except CalibrationStoreError as exc:  # a full or read-only disk: no retry helps
            return _unsaved(report, calibration, exc)
        except CalibrationError as exc:  # the calibration itself was refused: a failed run
            report.problems.append(f"not saved: {str(exc).rstrip('.')}")
            return False


def _unsaved(report: CalibrationReport, calibration: Calibration,
             exc: CalibrationStoreError) -> bool:
    report.unsaved = calibration
    report.save_error = exc
    report.problems.append(f"not saved: {str(exc).rstrip('.')}. The calibration "
                           f"{calibration.calibration_id} measured here was neither saved nor "
                           "installed; the pen keeps its previous calibration")
    return False
