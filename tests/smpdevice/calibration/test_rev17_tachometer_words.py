"""Review 17 (tech, wording): a refused tachometer entry speaks of the tachometer and of Hz.
It said "Read the gauge again" and "e.g. 0.52" for a value in Hz."""

from __future__ import annotations

import pytest

from smpdevice.calibration.readings import EntryError, parse_reading
from smpdevice.ui.gauges import ManualGauge


@pytest.mark.parametrize("typed", ["abc", "1200", "12"])
def test_a_refused_tachometer_reading_names_the_tachometer_and_hz(typed):
    with pytest.raises(EntryError) as err:
        parse_reading(typed, low=0.0, high=400.0, expected=120.0, what="tachometer reading",
                      unit="Hz")
    text = str(err.value)
    assert "tachometer" in text and "Hz" in text, text
    assert "gauge" not in text and "0.52" not in text, text


def test_the_guided_tachometer_prompt_asks_again_with_those_words():
    shown: list[str] = []
    answers = iter(["1200", "121.5"])
    gauge = ManualGauge(prompt=lambda _: next(answers), echo=shown.append)
    assert gauge.read_tachometer_hz(120.0, 0.0, 400.0) == 121.5
    refusal = next(line for line in shown if "refused" in line)
    assert "Read the tachometer again" in refusal and "Did you mean 120" in refusal, refusal


def test_a_gauge_reading_keeps_its_own_words():
    with pytest.raises(EntryError) as err:
        parse_reading("5.2", low=0.0, high=3.0, expected=0.52)
    assert "Read the gauge again" in str(err.value)
    with pytest.raises(EntryError, match=r"in mm, e\.g\. 0\.52"):
        parse_reading("abc", low=0.0, high=3.0)
