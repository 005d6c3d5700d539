"""Review 15 S2: a slipped decimal point in the guided zero step is refused, and asked again.

docs/technicians.md: "Every entry is checked before it is accepted". At zero reading 2 a
technician typed 10x the gauge's reading: it was accepted although reading 1, further out, was
smaller; the step then ended "flush at about actuator -0.044 mm" (true: 0.234), below a position
read as inside, and depth point 1 sat where the tip is inside: its true reading, 0, was refused
at every try. Now a zero reading must not shrink as the actuator grows against any reading so
far (whatever the order asked) nor grow faster than the pen can move it, a slip against the
readings' line is refused as a typo, and the flush estimate stays between the last position read
inside and the first read out.

The technician reads the simulated pen's own gauge (a real controller, virtual time) and types
it, but for the slips under test; a run that still traps them types `q` after MAX_PROMPTS."""

from __future__ import annotations

import re

import pytest

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.readings import (
    LikelyTypoError,
    NonMonotonicError,
    Point,
    check_typo,
)
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.speed import ZeroSearch
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.ui.gauges import ManualGauge
from tests.smpdevice.virtual_time import virtual_sim

FAST = CalibrationSettings(run_speed=False)
MAX_PROMPTS = 40  # a whole guided run asks ~15 times; more means the technician is trapped


def technician_run(sim, ctl, slip: dict[int, float]) -> tuple[object, list[str]]:
    """A guided run where zero reading N (1-based, the first time asked) is typed as the
    gauge's value times `slip[N]`; every other entry is the gauge's own reading. Refused on a
    slip, the technician reads again; refused on a true reading, they do what the refusal says
    to go back to the earlier reading it names (`r`, as many times as it says)."""
    gauge = SimulatorGauge(sim)
    shown: list[str] = []
    asked: set[int] = set()
    state = {"prompts": 0, "back": 0, "slipped": False}

    def prompt(_: str) -> str:
        state["prompts"] += 1
        if state["prompts"] > MAX_PROMPTS:
            return "q"
        refused = shown[-1].strip().startswith("refused:")
        if refused and not state["slipped"] and (go := re.search(
                r"enter r (?:(\d+) times|to read it again)", shown[-1])):
            state["back"] = int(go.group(1) or 1)
        if state["back"]:
            state["back"] -= 1
            return "r"
        value = gauge.read_mm(GaugeRequest(label="technician", actuator_mm=0.0))
        label = re.match(r"Zero, reading (\d+):", next(
            line for line in reversed(shown) if "Read the gauge" in line))
        n = int(label.group(1)) if label else 0
        state["slipped"] = n in slip and n not in asked
        asked.add(n)
        if state["slipped"]:
            value *= slip[n]  # the slip, typed once
        return f"{value:.4f}"

    manual = ManualGauge(prompt=prompt, echo=shown.append)
    report = run_calibration(ctl, manual, technician="ana", settings=FAST, echo=shown.append)
    return report, shown


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("slip", [{2: 10.0}, {1: 0.1}, {1: 10.0}, {3: 10.0}, {3: 0.1}],
                         ids=lambda s: "-".join(f"{n}x{k:g}" for n, k in s.items()))
def test_a_slipped_zero_reading_is_refused_and_the_run_passes(seed, slip):
    with virtual_sim(seed=seed) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report, shown = technician_run(sim, ctl, slip)
        flush_mm = sim.model.actuator_mm_for(0.0)
    text = "\n".join(shown)
    assert report.passed, text + "\n" + format_report(report)  # never trapped, nothing lost
    assert "refused:" in text, text
    assert report.zero_search_mm == pytest.approx(flush_mm, abs=0.02), text


def test_a_zero_reading_that_shrinks_as_the_actuator_grows_is_refused_in_any_order():
    search = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    search.add(Point(1.25, 0.96))
    search.add(Point(0.30, 0.0))  # inside
    with pytest.raises(NonMonotonicError, match="reading 1's 0.96 mm"):
        search.check(Point(0.39, 1.47))  # further in, larger: a slip
    with pytest.raises(NonMonotonicError, match="further in"):
        search.check(Point(1.40, 0.5))  # further out, smaller
    with pytest.raises(NonMonotonicError, match="reading 2's 0 mm"):
        search.check(Point(0.25, 0.05))  # out where a position further out was inside
    with pytest.raises(NonMonotonicError, match="reading 1's"):
        search.check(Point(1.30, 0.0))  # inside, further out than a position read out
    with pytest.raises(NonMonotonicError, match="only 0.004 mm away"):
        search.check(Point(1.254, 9.6))  # a 10x slip just past reading 1: grows far too fast
    search.check(Point(0.39, 0.147))  # between: accepted
    search.check(Point(0.20, 0.0))  # inside, further in than the inside one: accepted


def test_the_flush_estimate_stays_between_the_last_inside_and_first_outside_readings():
    # an automatic gauge is not asked again: a bent line is kept from lying past what was read
    below = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    for p in (Point(1.25, 0.96), Point(0.60, 0.70), Point(0.50, 0.0)):
        below.add(p)  # the line through the two out readings reaches 0 at -1.15 mm
    assert below.zero_actuator_mm == pytest.approx(0.50)
    above = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    for p in (Point(1.25, 0.90), Point(1.20, 0.10), Point(1.15, 0.09)):
        above.add(p)  # the least-squares line reaches 0 at 1.155 mm, past a tip read out
    assert above.zero_actuator_mm == pytest.approx(1.15)
    single = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    for p in (Point(0.90, 0.50), Point(0.60, 0.0)):
        single.add(p)  # one reading out: nominal gain 1 says 0.40 mm, read inside at 0.60
    assert single.zero_actuator_mm == pytest.approx(0.60)


def test_a_one_tenth_slip_against_the_readings_line_is_refused_as_a_typo():
    search = ZeroSearch(min_mm=0.0, max_mm=2.5, start_mm=1.25)
    search.add(Point(1.25, 0.96))
    search.add(Point(0.39, 0.147))
    expected = search.expected_mm(0.80)
    assert expected == pytest.approx(0.535, abs=0.01)
    typed = iter(["0.0535", "0.535"])
    told: list[str] = []
    gauge = ManualGauge(prompt=lambda _: next(typed), echo=told.append)
    request = GaugeRequest(label="Zero, reading 3", actuator_mm=0.80, expected_mm=expected,
                           check=lambda v: search.check(Point(0.80, v)))
    assert gauge.read_mm(request) == pytest.approx(0.535)
    assert any("1/10 of the expected" in line for line in told), told
    with pytest.raises(LikelyTypoError):
        check_typo(0.0535, expected, what="gauge reading", unit="mm")
