"""A built-in simulated pen on virtual time (docs/simulator.md, "Virtual time"):
`pensim://?clock=virtual` or SMP_SIM_CLOCK=virtual. A whole session plays with the figures it
has on real time, its records say how long the pen ran each pass, and its pass log verifies;
a real pen, a pen over TCP and plain `pensim://` stay on wall time."""

from __future__ import annotations

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
from tests.smpdevice.cli.test_cli_run import SCREENING, calibrate_default_pen, short_profile
from tests.smpdevice.conftest import true_calibration

PASS_S = 0.5  # each pass of the short profile (its passes are bounded by time)


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


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.delenv("SMP_SIM_CLOCK", raising=False)
    calibrate_default_pen(tmp_path)
    return tmp_path


@pytest.mark.parametrize("how", ["url", "environment"])
def test_a_session_on_virtual_time_has_the_figures_of_real_time(data_dir, tmp_path, how):
    profile = short_profile(tmp_path, seconds=str(PASS_S))
    real = _run("pensim://", data_dir, profile)
    if how == "url":
        virtual = _run("pensim://?clock=virtual", data_dir, profile)
    else:
        virtual = _run("pensim://", data_dir, profile, env={"SMP_SIM_CLOCK": "virtual"})
    assert len(virtual) == len(real) == 4
    plan = load_profile(profile).plan
    for v, r, planned in zip(virtual, real, plan, strict=True):
        assert v.outcome == r.outcome == "completed"
        assert (v.zone, v.depth_mm, v.speed_hz, v.duty_pct) == (r.zone, r.depth_mm, r.speed_hz,
                                                               r.duty_pct)
        assert v.impressions == r.impressions > 0
        assert abs(v.strokes - r.strokes) <= max(2, r.strokes // 5)  # real time: host jitter
        if planned.impressions is not None:
            assert v.impressions == planned.impressions
        else:
            # The record says how long the pen ran the pass (its clock), not how long the
            # computer took to compute it: the pass's time, plus the start's actuator settling
            # and the last report, never less. (Old: wall-clock stamps, a fraction of it.)
            assert planned.duration_s == PASS_S <= _seconds(v) <= PASS_S + 0.25


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


def test_smp_demo_on_virtual_time_prints_the_same_pass_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    figures = []
    for clock in ("real", "virtual"):
        monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / clock))
        monkeypatch.setenv("SMP_SIM_CLOCK", clock)
        result = CliRunner().invoke(main, ["demo", "--quick"])
        assert result.exit_code == 0, result.output
        with PassLog(tmp_path / clock / "passlog.sqlite", readonly=True) as log:
            assert log.verify() is None
            figures.append([(p.zone, p.outcome, p.impressions) for p in log.passes()])
            needle_s = [_seconds(p) for p in log.passes()]
        assert all(s >= 0.4 for s in needle_s), needle_s  # QUICK_PASS_S, on the pen's clock
    assert figures[0] == figures[1]


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
