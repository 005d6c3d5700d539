"""`Calibration.linear` and `Calibration(...)` refuse every bad argument with one
CalibrationError naming it (never an OverflowError, a TypeError or a silent default)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control.calibration import Calibration, CalibrationError

BASE = dict(pen_serial="SMP-1", technician="ana", offset_mm=0.0, gain=1.0)
MINUS_14 = timezone(timedelta(hours=-14))


@pytest.mark.parametrize(("name", "value"), [
    ("created_at", datetime.max),                                  # naive, and at the end
    ("created_at", datetime.max.replace(tzinfo=UTC)),               # + validity overflows
    ("created_at", datetime.max.replace(tzinfo=UTC) - timedelta(days=5)),
    ("created_at", datetime(9999, 12, 31, 20, tzinfo=MINUS_14)),    # no UTC time for it
    ("created_at", datetime(2026, 1, 1)),                           # naive
    ("created_at", date(2026, 1, 1)),
    ("created_at", "2026-01-01T00:00:00+00:00"),
    ("created_at", 0),                                              # falsy: never "now"
    ("created_at", False),
    ("gain", float("nan")), ("gain", float("inf")), ("gain", -1.0), ("gain", True),
    ("offset_mm", float("-inf")), ("offset_mm", float("nan")),
    ("validity_days", float("nan")), ("validity_days", float("inf")), ("validity_days", 0),
    ("validity_days", 1e300),
    ("pen_serial", ""), ("technician", None),
    ("expires_at", datetime(2030, 1, 1, tzinfo=UTC)),               # set by validity_days
    ("speed_err_pct", 3.0),                                         # a misspelled field
])
def test_linear_refuses_a_bad_argument_naming_it(name, value):
    with pytest.raises(CalibrationError) as err:
        Calibration.linear(**{**BASE, name: value})
    text = str(err.value)
    assert name in text and "\n" not in text


def test_far_past_and_future_dates_that_fit_are_kept_and_judged_by_check_for():
    past = Calibration.linear(**BASE, created_at=datetime(1, 1, 1, tzinfo=UTC))
    assert past.expires_at == datetime(1, 1, 31, tzinfo=UTC)
    with pytest.raises(CalibrationError, match="expired"):
        past.check_for("SMP-1")
    future = Calibration.linear(**BASE, created_at=datetime(9999, 1, 1, tzinfo=UTC))
    with pytest.raises(CalibrationError, match="after this computer's clock"):
        future.check_for("SMP-1")


def test_the_model_refuses_a_date_with_no_utc_time():
    with pytest.raises(CalibrationError, match="expires_at"):
        Calibration(**BASE, created_at=datetime(9999, 12, 30, tzinfo=UTC),
                    expires_at=datetime(9999, 12, 31, 20, tzinfo=MINUS_14))


@pytest.mark.parametrize("now", [datetime.min.replace(tzinfo=UTC),
                                 datetime.max.replace(tzinfo=UTC)])
def test_check_for_judges_a_far_now_without_overflow(now):
    cal = Calibration.linear(**BASE, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(CalibrationError, match="after this computer's clock|expired"):
        cal.check_for("SMP-1", now)


@pytest.mark.parametrize("now", [datetime(2026, 1, 1), "2026-01-01", 0])
def test_check_for_refuses_a_now_that_is_no_aware_datetime(now):
    cal = Calibration.linear(**BASE, created_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidArgument, match="now="):  # as the store's reads refuse it
        cal.check_for("SMP-1", now)


def test_require_calibration_refuses_what_is_no_calibration():
    from smpdevice.control.calibration import require_calibration

    with pytest.raises(InvalidArgument, match="calibration="):
        require_calibration("cal-1", "SMP-1")  # type: ignore[arg-type]
