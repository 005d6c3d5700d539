"""Review 15 A2 (store): `CalibrationStore.save()` stored a calibration changed with
`model_copy(update=...)` (which skips pydantic's checks) that its own readers then called
damaged: after a 2099 expiry was saved, `latest_valid(serial)` raised "calibration ... is
damaged" for that pen, so its good calibration could no longer be read.

Promised (docs/safety.md): "every Calibration constructor checks type, finiteness and range
before anything is sent or stored" (gain 0.5-2.0, validity up to 366 days).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from smpdevice.calibration.checked import revalidated
from smpdevice.calibration.store import CalibrationStore
from smpdevice.checks import InvalidArgument
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.conftest import fit_points

GOOD = Calibration.linear(pen_serial="SMP-1", technician="ana", offset_mm=0.1, gain=1.0,
                          **fit_points(0.1, 1.0))

FORGED = {
    "expiry 70 years out": ({"expires_at": datetime(2099, 1, 1, tzinfo=UTC)}, "366 days"),
    "gain 5": ({"gain": 5.0}, "gain"),
    "gain NaN": ({"gain": math.nan}, "gain"),
    "offset inf": ({"offset_mm": math.inf}, "offset_mm"),
    "naive expiry": ({"expires_at": datetime(2026, 12, 1)}, "time zone"),
    "technician with ESC": ({"technician": "ana\x1b[2J"}, "technician"),
    "gain not the fit of its points": ({"points": [(0.1, 0.2), (0.5, 0.6), (0.9, 1.0)],
                                        "gain": 1.2}, "gain"),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_save_refuses_what_its_readers_call_damaged(tmp_path, case):
    update, named = FORGED[case]
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    store.save(GOOD)
    forged = GOOD.model_copy(update={"calibration_id": "forged", **update})
    with pytest.raises(CalibrationError, match=named):
        store.save(forged)  # was stored without a word
    assert store.get("forged") is None
    assert store.latest_valid("SMP-1").calibration_id == GOOD.calibration_id
    assert [c.calibration_id for c in store.list("SMP-1")] == [GOOD.calibration_id]


def test_wrong_types_are_typed_errors(tmp_path):
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    with pytest.raises(InvalidArgument, match="calibration"):
        store.save({"gain": 1.0})
    with pytest.raises(InvalidArgument, match="now"):
        store.latest_valid("SMP-1", now="2026-01-01")
    with pytest.raises(InvalidArgument, match="calibration"):
        revalidated("c1")


def test_revalidated_returns_an_equal_calibration():
    assert revalidated(GOOD) == GOOD
