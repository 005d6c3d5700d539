"""smpdevice.checks at its edges: huge ints, Fractions, and names with
control or bidirectional-override characters are refused with one typed error, never a
traceback."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.unicode_reference import blank, unknown_here

HUGE = 10**400  # no float holds it: float() raises OverflowError


def test_an_int_beyond_float_is_a_typed_refusal():
    with pytest.raises(InvalidArgument, match=r"depth_mm=.*not a finite number.*0 to 3 mm"):
        checks.finite_number("depth_mm", HUGE, 0, 3, unit="mm")
    assert checks.is_finite_real(HUGE) is False
    assert checks.is_finite_real(-HUGE) is False


def test_an_int_too_long_to_print_is_still_a_typed_refusal():
    with pytest.raises(InvalidArgument, match="too large to show"):
        checks.finite_number("gain", 10**5000, 0.5, 2)


def test_calibration_with_huge_numbers_is_refused_typed():
    for field in ("offset_mm", "gain", "validity_days"):
        kwargs = dict(pen_serial="SMP-1", technician="t", offset_mm=0.1, gain=1.0)
        kwargs[field] = HUGE
        with pytest.raises(CalibrationError, match=field):
            Calibration.linear(**kwargs)


def test_validity_days_as_a_fraction_is_converted():
    cal = Calibration.linear(pen_serial="SMP-1", technician="t", offset_mm=0.1, gain=1.0,
                             validity_days=Fraction(1, 3))
    assert cal.expires_at - cal.created_at == timedelta(days=1 / 3)


@pytest.mark.parametrize("bad", ["\x00", "\r", "\n", "\t", "\x1b", "\x7f", "\u202a", "\u202e",
                                 "\u2066", "\u2069", "\u200f"])
def test_names_with_control_or_bidi_characters_are_refused(bad):
    with pytest.raises(CalibrationError, match=f"technician=.*U\\+{ord(bad):04X}"):
        Calibration.linear(pen_serial="SMP-1", technician=f"ana{bad}lyst", offset_mm=0.1,
                           gain=1.0)


@given(st.text(min_size=1, max_size=40))
@example("\u0301")  # a lone mark: an accent over nothing
@example("\u0600")  # a format character (Cf) that draws only over the digits after it
def test_text_accepts_exactly_the_printable_names(value):
    """The reference is the rule of test_checks_visible.py (unicode_reference.blank): a lone
    mark or a format character shows nothing; the old one here counted them as visible."""
    bad = any(checks.not_in_line(c) or unknown_here(c) for c in value)
    shows = any(not blank(c) for c in value)
    if bad or not shows:
        with pytest.raises(InvalidArgument):
            checks.text("name", value)
    else:
        assert checks.text("name", value) == value


def test_controller_arguments_beyond_float_are_typed(pen):
    from smpdevice.errors import SmpError

    for call in (lambda: pen.set_setpoints(depth_mm=HUGE, speed_hz=100, duty_pct=40,
                                           period_ms=100),
                 lambda: pen.pause(HUGE),
                 lambda: pen.start_needle(settle_timeout_s=HUGE)):
        with pytest.raises(SmpError) as err:
            call()
        assert not isinstance(err.value, OverflowError)


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200c", "\u2060 ", "\ufeff", "\u00ad",
                                       "\u3164\ufe0f"])
def test_a_name_with_no_visible_character_is_refused(invisible):
    """`-t $'\\u200b'` used to be recorded as a technician nobody can read."""
    with pytest.raises(InvalidArgument, match="no visible character"):
        checks.technician(invisible)
    assert checks.technician("ana\u200b") == "ana\u200b"  # a visible one is enough
