"""A calibration checked whole again before it is stored or used.

`model_copy(update=...)` skips pydantic's checks, so a copy may hold what no constructor lets
through (a gain of 5, an expiry 70 years out, NaN): stored, it would be refused by every later
read of the store as damaged, and the pen's good calibrations with it. `revalidated()` checks
the copy exactly as a read of the store does (its JSON validated again, its offset and gain the
fit of its own points) and says what is wrong in one CalibrationError, before anything is
stored or sent. `to_store()` also wants the points the fit came from, as every stored row must.
"""

from __future__ import annotations

from pydantic import ValidationError

from smpdevice import checks
from smpdevice.calibration.fit import check_fit_of_points, check_stored
from smpdevice.control.calibration import Calibration, CalibrationError


def revalidated(calibration: object, *, name: str = "calibration") -> Calibration:
    """`calibration` validated again whole (as read back from a store); CalibrationError naming
    the field and the allowed range otherwise, InvalidArgument for anything not a Calibration."""
    checks.instance(name, calibration, Calibration,
                    "a Calibration (Calibration.linear(...) or a calibration run's)")
    assert isinstance(calibration, Calibration)  # for the type checker: checked just above
    try:
        fresh = Calibration.model_validate_json(calibration.model_dump_json())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or name}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise _refused(name, calibration, problems) from None
    except (CalibrationError, ValueError) as exc:
        raise _refused(name, calibration, str(exc)) from None
    check_fit_of_points(fresh)
    return fresh


def to_store(calibration: object) -> Calibration:
    """`revalidated(calibration)`, and only if it carries the points its fit came from (as a
    read of the store demands, `check_stored`): CalibrationError, naming why, otherwise."""
    fresh = revalidated(calibration)
    try:
        check_stored(fresh)
    except CalibrationError as exc:
        raise CalibrationError(f"calibration {repr(fresh.calibration_id)[:60]} is refused: "
                               f"{exc}. Nothing was stored: save the calibration a run made "
                               "(smp calibrate), with its points.") from None
    return fresh


def _refused(name: str, calibration: Calibration, why: str) -> CalibrationError:
    shown = repr(calibration.calibration_id)[:60]
    return CalibrationError(f"{name} {shown} is refused: {why}. Nothing was stored or sent: "
                            "make it with Calibration.linear(...) or a calibration run, not "
                            "model_copy(update=...).")
