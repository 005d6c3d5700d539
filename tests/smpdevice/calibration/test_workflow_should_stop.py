"""`run_calibration(..., should_stop=...)`: a run ended from outside (the service's dead-man
rule for `calibration.auto`, closing-7 leftover). The reason ends the run at once: a spin under
way stops its needle within a report or two (watched in the pen's reader thread, not by
whoever runs the workflow), no move and no start come after, the report names the reason, and
nothing is saved or installed. The real controller and simulated pen on virtual time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.messages import NeedleStart, SetSetpoints
from simulators import PenSimulator
from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.stopping import StopCheck
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from smpdevice.control.pen import PenTelemetry
from tests.smpdevice.virtual_time import virtual_sim

WHY = "the driving client test-1 was lost"
# 5 s each, at the station's speeds (a store saves no other: 52, 105, 158 Hz on these pens)
LONG_SPIN = CalibrationSettings(spin_duration_s=5.0)


def _sent(sim: PenSimulator, kind: type) -> int:
    """What the pen executed of `kind` so far (counted whole: the link's history is a ring of
    its last frames, which an armed calibration move's three frames roll over)."""
    return sim.firmware.executed[MsgType(kind.TYPE)]


class _Stopper:
    """should_stop: None until `fire()`, then WHY; what the pen had been sent by then."""

    def __init__(self, sim: PenSimulator) -> None:
        self.sim = sim
        self.why: str | None = None
        self.at: dict[type, int] = {}
        self.at_ms: int | None = None

    def __call__(self) -> str | None:
        return self.why

    def fire(self, t: PenTelemetry | None = None) -> None:
        if self.why is None:
            self.at = {k: _sent(self.sim, k) for k in (NeedleStart, SetSetpoints)}
            self.at_ms = t.uptime_ms if t is not None else None
            self.why = WHY


def _assert_ended_and_nothing_saved(ctl, sim, report, stopper, store) -> None:
    text = format_report(report)
    assert not report.passed and report.calibration is None and not report.saved, text
    assert any(p.startswith(f"stopped: {WHY}") for p in report.problems), text
    assert "Result: FAIL; nothing was saved" in text
    assert ctl.calibration is None  # nothing installed
    assert store.latest(sim.serial) is None  # nothing saved
    assert ctl.state is State.IDLE and sim.firmware.state is FirmwareState.IDLE
    # nothing asked of the pen after the cause: no start, no move (end_calibration stops)
    assert _sent(sim, NeedleStart) == stopper.at[NeedleStart]
    assert _sent(sim, SetSetpoints) == stopper.at[SetSetpoints]


def _run(sim, ctl, stopper, tmp_path, gauge=None) -> tuple[object, CalibrationStore]:
    store = CalibrationStore(tmp_path / "c.sqlite")
    report = run_calibration(ctl, gauge or SimulatorGauge(sim.url), technician="qa",
                             settings=LONG_SPIN, store=store, should_stop=stopper)
    return report, store


@pytest.mark.parametrize("above_hz", [0.0, 90.0])  # in the first spin (52 Hz), the second
def test_a_cause_while_the_needle_spins_stops_it_and_ends_the_run(tmp_path, above_hz):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        stopper = _Stopper(sim)
        frames: list[PenTelemetry] = []

        def watch(t: PenTelemetry) -> None:  # in the reader thread, as the service's lease
            frames.append(t)
            if t.needle_running and t.speed_hz > above_hz:
                stopper.fire(t)

        ctl.add_inline_telemetry_reader(watch)
        report, store = _run(sim, ctl, stopper, tmp_path)
        sim.time.sleep(1.0)
        ctl.remove_inline_telemetry_reader(watch)
        _assert_ended_and_nothing_saved(ctl, sim, report, stopper, store)
        assert stopper.at_ms is not None
        late = [t.uptime_ms for t in frames
                if t.needle_running and t.uptime_ms > stopper.at_ms + 100]
        assert not late, f"the needle ran on after the cause (5 s spin): {late[:3]}"


def test_a_cause_between_depth_points_moves_nothing_more(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        stopper = _Stopper(sim)

        labels: list[str] = []

        class Gauge(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                labels.append(request.label)
                if request.label.startswith("Depth point 3"):
                    stopper.fire()  # while the technician reads: the next move never comes
                return super().read_mm(request)

        report, store = _run(sim, ctl, stopper, tmp_path, Gauge(sim.url))
        assert stopper.at[NeedleStart] == 0
        _assert_ended_and_nothing_saved(ctl, sim, report, stopper, store)
        assert labels[-1].startswith("Depth point 3")  # nothing was read after it


def test_a_cause_that_goes_away_still_ends_the_run(tmp_path):
    """The first reason is kept: a driver back meanwhile does not revive the run."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        asked = [0]

        def flicker() -> str | None:
            asked[0] += 1
            return WHY if asked[0] == 3 else None

        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa",
                                 settings=LONG_SPIN, store=store, should_stop=flicker)
        assert not report.passed and store.latest(sim.serial) is None
        assert any(p.startswith(f"stopped: {WHY}") for p in report.problems)
        assert ctl.state is State.IDLE




@pytest.mark.parametrize("answer", [None, False, ""])
def test_a_check_that_says_go_on_lets_the_run_pass(tmp_path, answer):
    """None, False (a session's bool should_stop) or "" mean: go on."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", store=store,
                                 settings=CalibrationSettings(spin_duration_s=0.2),
                                 should_stop=lambda: answer)
        assert report.passed, format_report(report)
        assert store.latest(sim.serial) is not None


def test_a_check_that_fails_ends_the_run_safely(tmp_path):
    def broken() -> str | None:
        raise RuntimeError("lease unreadable")

    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa", store=store,
                                 settings=LONG_SPIN, should_stop=broken)
        assert not report.passed and store.latest(sim.serial) is None
        assert any("stop check failed" in p and "lease unreadable" in p
                   for p in report.problems), report.problems
        assert ctl.state is State.IDLE and _sent(sim, NeedleStart) == 0


@given(st.lists(st.one_of(st.none(), st.booleans(), st.text(max_size=5)), max_size=8))
def test_the_first_reason_is_kept(answers):
    it = iter(answers)
    check = StopCheck(lambda: next(it, None))
    seen = [check.reason() for _ in answers]
    first = next((a for a in answers if a), None)
    expected = None if first is None else (first if isinstance(first, str)
                                           else "the run was asked to stop")
    assert seen[-1:] in ([], [expected])
    assert all(s in (None, expected) for s in seen)
