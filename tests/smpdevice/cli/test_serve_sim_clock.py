"""`smp serve --port 'pensim://?clock=virtual'`: a served pen on virtual time (docs/simulator.md,
"Virtual time"). The service's controller takes the pen's clock and drives it; a session played
by the service waits on that clock and plays as fast as the computer computes it, with the
model's figures; a client timing things on the wall clock sees the pen's time go on at about
the wall's pace; the dead-man chain (the driving client's lease on wall time gating the pen's
lease on the pen's time) still stops the needle when the client falls silent."""

from __future__ import annotations

from importlib import resources

import pytest
from click.testing import CliRunner

from firmware_protocol.codes import FirmwareState
from simulators import PenModel, lookup
from smpdevice.control import State
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.command import own_simulated_pen, serve
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.cli.test_cli_sim_clock import assert_timed_pass_fits
from tests.smpdevice.service.conftest import connect, drive_needle, run, wait_until

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}
QUICK_PASS_S = 0.4
WAIT_S = 60.0  # wall: generous on two loaded cores; every wait ends on a condition
STEP_S = 25.0  # one wait of the dead-man test, inside run()'s 60 s: a failure names it


@pytest.fixture
def served(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    model = PenModel(seed=0)  # the pen pensim:// starts
    calibration = Calibration.linear(pen_serial=model.serial, technician="t",
                                     offset_mm=-model.offset_mm, gain=model.gain)
    options = ServiceOptions(port="pensim://?clock=virtual", listen="127.0.0.1:0",
                             data_dir=data, lease_ms=500, calibration=calibration)
    with ServiceHandle(options) as handle:
        pen = handle.pen
        assert pen.clock.is_virtual and pen._time_driver is not None  # the pen's clock, driven
        yield handle, data


def test_a_session_played_by_the_service_runs_on_the_pens_clock_with_the_models_figures(
        served):
    handle, data = served

    async def main() -> dict:
        viewer = await connect(handle, Role.VIEWER)
        op = await connect(handle, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="t",
                      quick_pass_s=QUICK_PASS_S)
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await op.close()
        await viewer.close()
        return result

    result = run(main())
    assert result["outcome"] == "completed" and result["complete"] is True
    with PassLog(data / "passlog.sqlite", readonly=True) as log:
        assert log.verify() is None
        passes = log.passes()
    assert len(passes) == 4
    for p in passes:
        assert p.outcome == "completed"
        assert_timed_pass_fits(p, QUICK_PASS_S)  # needle time and impressions: the pen's


def test_a_served_virtual_pen_keeps_time_for_wall_clock_clients_and_its_dead_man_holds(
        served):
    handle, _data = served
    pen = handle.pen
    sim = lookup(pen.link.port)
    assert sim is not None and sim.clock is pen.clock

    async def main() -> None:
        op = await connect(handle, Role.OPERATOR)
        await drive_needle(op, lease_ms=600)  # heartbeats every 150 ms of wall time
        # Nobody in the service waits on the pen's clock now: it goes on at the wall's pace
        # (it never stands still), and the pen's lease is renewed on it while heartbeats come.
        start_s = pen.clock.now()  # two of the pen's 500 ms leases, then some
        await wait_until(lambda: pen.clock.now() >= start_s + 1.2, STEP_S, "pen time")
        assert sim.firmware.state is FirmwareState.RUNNING and pen.last_fault is None
        # The client falls silent: its lease (wall time) lapses, the gate stops the renewals
        # and the service stops the needle; the pen's own lease would stop it regardless.
        op.stop_heartbeats()
        await wait_until(lambda: sim.firmware.state is not FirmwareState.RUNNING, STEP_S,
                         "the needle to stop")
        await wait_until(lambda: pen.state is not State.RUNNING, STEP_S, "the controller")
        op.ws.transport.abort()

    run(main())
    assert sim.firmware.state is not FirmwareState.RUNNING


def test_smp_sim_clock_virtual_puts_the_pen_smp_serve_makes_on_the_hosts_clock(
        tmp_path, monkeypatch):
    """`SMP_SIM_CLOCK=virtual smp serve --port pensim://` (docs/simulator.md): the pen the
    command makes in its own process runs on virtual time, and the service drives it."""
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    sim = own_simulated_pen(" PENSIM:// ")
    try:
        assert sim.clock.is_virtual and sim.clock.host_driven
        options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=tmp_path / "data")
        with ServiceHandle(options) as handle:
            assert handle.pen.clock is sim.clock and handle.pen._time_driver is not None
    finally:
        sim.close()


@pytest.mark.parametrize("setting", [None, "real", " Real "])
def test_smp_serve_keeps_its_pen_on_real_time_unless_told(monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv("SMP_SIM_CLOCK", raising=False)
    else:
        monkeypatch.setenv("SMP_SIM_CLOCK", setting)
    sim = own_simulated_pen("pensim://")
    try:
        assert not sim.clock.is_virtual
    finally:
        sim.close()
    assert own_simulated_pen("socket://127.0.0.1:9") is None  # not ours to make


def test_a_bad_smp_sim_clock_is_a_usage_error_before_anything_is_served(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "fast")
    result = CliRunner().invoke(serve, ["--port", "pensim://", "--listen", "127.0.0.1:0"])
    assert result.exit_code == 2, result.output
    assert "SMP_SIM_CLOCK='fast' is not a simulator clock" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "data" / "service.tokens.json").exists()
