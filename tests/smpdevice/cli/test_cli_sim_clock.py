"""A built-in simulated pen on virtual time (docs/simulator.md, "Virtual time"):
`pensim://?clock=virtual` or SMP_SIM_CLOCK=virtual. A whole session plays with the figures the
pen's model gives (impressions from needle time and pulse period, strokes from speed x duty),
the same ones every time, its records say how long the pen ran each pass, and its pass log
verifies; a real pen, a pen over TCP and plain `pensim://` stay on wall time.

Nothing here compares with a run on real time: on two loaded cores a real-time run's stop lands
late by whatever the scheduler gives it (3 and 5 impressions seen for the same pass), so it is
no reference. The model is."""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, lookup
from simulators.reach import TcpBridge
from smpdevice.cli import main
from smpdevice.control import PenController, State
from smpdevice.link.clock import MONOTONIC
from smpdevice.passlog import PassLog
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.session import POLL_S
from tests.smpdevice.cli.test_cli_run import SCREENING, calibrate_default_pen, short_profile
from tests.smpdevice.conftest import true_calibration

PASS_S = 0.5  # each pass of the short profile (its passes are bounded by time)
# How long after a timed pass's end the pen may still run the needle on virtual time: the host
# looks every POLL_S of pen time, and the stop's frame is answered within a step or two.
# The figures below hold for any overshoot under this bound: three polls.
OVERSHOOT_S = 3 * POLL_S
# Strokes of one impression's burst may differ from speed x period x duty by the motor's
# spin-up and run-down and the encoder's edge counting: two strokes at most per pass.
STROKE_SLACK = 2


def _run(port: str, data_dir, profile, env: dict[str, str] | None = None) -> list:
    result = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", port], env=env)
    assert result.exit_code == 0, result.output
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        session = log.sessions()[-1]
        assert log.verify() is None  # the hash chain holds
        return [p for p in log.passes() if p.session_id == session.session_id]


def _seconds(p) -> float:
    return (datetime.fromisoformat(p.ended_at) - datetime.fromisoformat(p.started_at)
            ).total_seconds()


def impressions_of(duration_s: float, period_ms: float) -> int:
    """The pen's model: the needle's start begins one impression, each whole pulse period
    after it begins the next. A pass timed to `duration_s` runs the needle that long or a
    little longer (never shorter: the host starts counting once the pen said it runs)."""
    return 1 + math.floor(duration_s * 1000 / period_ms + 1e-9)


def assert_strokes_fit(p) -> None:
    """Strokes from the model: one burst of speed x period x duty per impression, the last one
    possibly cut short by the stop."""
    per_impression = p.speed_hz * p.period_ms / 1000 * p.duty_pct / 100
    low = (p.impressions - 1) * per_impression - STROKE_SLACK
    high = p.impressions * per_impression + STROKE_SLACK
    assert low <= p.strokes <= high, (p.zone, p.impressions, p.strokes, low, high)


def assert_timed_pass_fits(p, duration_s: float) -> None:
    expected = impressions_of(duration_s, p.period_ms)
    # The test's pass time leaves the model's next impression past any overshoot.
    assert impressions_of(duration_s + OVERSHOOT_S, p.period_ms) == expected, duration_s
    assert p.impressions == expected, (p.zone, p.impressions, expected)
    # The record says how long the pen ran the pass (its clock), not how long the computer
    # took to compute it: the pass's time, plus the start's actuator settling and the last
    # report, never less. (Old: wall-clock stamps, a fraction of it.)
    assert duration_s <= _seconds(p) <= duration_s + 0.25, _seconds(p)
    assert_strokes_fit(p)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.delenv("SMP_SIM_CLOCK", raising=False)
    calibrate_default_pen(tmp_path)
    return tmp_path


def test_a_session_on_virtual_time_plays_the_models_figures_and_the_same_every_time(
        data_dir, tmp_path):
    """Twice the same session on the same seed, once by URL and once by the environment:
    the same passes, outcomes, settings and impressions (a determinism promise), each as the
    pen's model says. Strokes may differ by where within a host poll the stop lands."""
    profile = short_profile(tmp_path, seconds=str(PASS_S))
    by_url = _run("pensim://?clock=virtual", data_dir, profile)
    by_env = _run("pensim://", data_dir, profile, env={"SMP_SIM_CLOCK": "virtual"})
    plan = load_profile(profile).plan
    assert len(by_url) == len(by_env) == len(plan) == 4
    for run in (by_url, by_env):
        for p, planned in zip(run, plan, strict=True):
            assert p.outcome == "completed" and p.zone == planned.zone
            if planned.impressions is not None:
                assert p.impressions == planned.impressions
                assert_strokes_fit(p)
            else:
                assert planned.duration_s == PASS_S
                assert_timed_pass_fits(p, PASS_S)

    def figures(run: list) -> list:
        return [(p.zone, p.depth_mm, p.speed_hz, p.duty_pct, p.period_ms, p.outcome,
                 p.impressions) for p in run]

    assert figures(by_url) == figures(by_env)
    per_impression = max(p.speed_hz * p.period_ms / 1000 * p.duty_pct / 100 for p in by_url)
    for a, b in zip(by_url, by_env, strict=True):
        assert abs(a.strokes - b.strokes) <= math.ceil(per_impression), (a.strokes, b.strokes)


def test_every_wait_of_the_host_runs_on_the_pens_clock_and_the_lease_holds(monkeypatch):
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    with PenController.connect("pensim://", lease_ms=200) as pen:
        assert pen.clock.is_virtual and pen.clock is not MONOTONIC
        sim = lookup(pen.link.port)
        assert sim is not None and sim.clock is pen.clock
        pen.set_calibration(true_calibration(sim))
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
        pen.arm()
        pen.start_needle()
        start_s = pen.clock.now()
        pen.pause(10.0)  # 50 leases of 200 ms: each renewed on the pen's clock
        assert pen.clock.now() - start_s >= 10.0
        assert pen.state is State.RUNNING and sim.firmware.state.name == "RUNNING"
        # A host thread busy elsewhere (here: a wall-clock sleep) never freezes the pen's time
        # while the needle may run: the controller's own loop waits on it (the lease).
        before_s = pen.clock.now()
        deadline = time.monotonic() + 60
        while pen.clock.now() < before_s + 1.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pen.clock.now() >= before_s + 1.0
        assert pen.state is State.RUNNING and pen.last_fault is None  # the lease held
        pen.stop_needle()
    assert pen._time_driver is None  # closed with the controller: nothing left running


def test_a_hung_host_on_virtual_time_lets_the_pen_stop_by_itself(monkeypatch):
    """The dead-man lease holds on virtual time too: a controller loop that hangs (here: on a
    wall-clock event) renews nothing, its pen's time goes on at the wall's pace, the lease
    lapses and the pen stops the needle on its own."""
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    with PenController.connect("pensim://", lease_ms=200) as pen:
        sim = lookup(pen.link.port)
        assert sim is not None
        pen.set_calibration(true_calibration(sim))
        pen.set_zone("crown")
        pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=120)
        pen.arm()
        pen.start_needle()
        release = threading.Event()
        pen._eng.post(lambda: release.wait(60))  # the loop hangs: no renewal, work in flight
        try:
            deadline = time.monotonic() + 60
            while sim.firmware.state.name == "RUNNING" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sim.firmware.state.name != "RUNNING"  # the pen stopped by itself
            assert "LEASE_EXPIRED" in repr(sim.firmware.faults), sim.firmware.faults
        finally:
            release.set()


def test_plain_pensim_a_named_pen_and_a_pen_over_tcp_stay_on_wall_time(monkeypatch):
    with PenController.connect("pensim://") as pen:
        assert pen.clock is MONOTONIC and pen._time_driver is None
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")  # only a fresh pensim:// pen reads it
    with PenSimulator(seed=4, name="wall-pen") as sim:
        with PenController.connect(sim.url) as pen:
            assert pen.clock is MONOTONIC and pen._time_driver is None
        with TcpBridge(sim) as bridge, PenController.connect(bridge.url) as pen:
            assert pen.clock is MONOTONIC and pen._time_driver is None
    # A clock the caller gives is the one used, whatever the port's.
    from simulators import VirtualClock

    given = VirtualClock()
    with PenSimulator(clock=given, name="given-clock") as sim:
        sim.advance(0.06)
        ctl = PenController(sim.url, clock=MONOTONIC)
        assert ctl.clock is MONOTONIC


def test_smp_demo_on_virtual_time_prints_the_models_pass_figures(tmp_path, monkeypatch):
    from smpdevice.cli.demo import QUICK_PASS_S

    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    result = CliRunner().invoke(main, ["demo", "--quick"])
    assert result.exit_code == 0, result.output
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        assert log.verify() is None
        passes = log.passes()
    assert len(passes) == 4
    for p in passes:  # every pass timed to QUICK_PASS_S, on the pen's clock
        assert p.outcome == "completed"
        assert_timed_pass_fits(p, QUICK_PASS_S)


@pytest.mark.parametrize(("args", "env", "named"), [
    (["info", "--port", "pensim://?clock=fast"], {}, "clock='fast'"),
    (["info", "--port", "pensim://"], {"SMP_SIM_CLOCK": "fast"}, "SMP_SIM_CLOCK='fast'"),
    (["demo", "--quick"], {"SMP_SIM_CLOCK": "later"}, "SMP_SIM_CLOCK='later'"),
])
def test_a_bad_clock_is_one_line_naming_it_and_the_choices(tmp_path, monkeypatch, args, env,
                                                            named):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert named in result.stderr and "real, virtual" in result.stderr, result.stderr
    assert "Traceback" not in result.output
