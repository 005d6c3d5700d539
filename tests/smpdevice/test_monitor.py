"""`smp monitor` and its view logic, against a real simulated pen (pensim://NAME).

The view logic runs on the simulator's virtual clock (a loaded machine only makes it slower);
the command line connects on wall time, so its tests are marked `realtime`."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sys
import time

import pytest
from click.testing import CliRunner

from firmware_protocol.codes import FAULT_DESCRIPTIONS, Fault, FirmwareState
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control import PenController, State
from smpdevice.monitor import KEYS_HELP, Monitor
from smpdevice.ui.monitor_view import render_text
from tests.smpdevice.conftest import run_needle, true_calibration


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Never read (or write) the user's own calibrations."""
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


pytestmark = pytest.mark.virtual_time  # the `sim` of tests/smpdevice/conftest.py


def _until(pen: PenController, condition, timeout_s: float = 30.0) -> None:
    """Wait on the pen's clock (virtual here) until `condition()`."""
    deadline = pen.clock.now() + timeout_s
    while not condition():
        assert pen.clock.now() < deadline, "condition not reached in time"
        pen.pause(0.01)


def test_snapshot_shows_states_setpoints_measurements_and_link(sim):
    with PenController.connect(sim.url, calibration=true_calibration(sim),
                               clock=sim.clock) as pen:
        run_needle(pen, depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)
        mon = Monitor(pen=pen)
        _until(pen, lambda: pen.telemetry.strokes > 10 and abs(pen.telemetry.depth_mm - 0.5) < 0.01)
        snap = mon.snapshot()
        assert snap.controller_state == "running" and snap.pen_state == "RUNNING"
        assert snap.calibrated and snap.zone == "crown"
        figures = {f.name: f for f in snap.figures}
        assert figures["depth in skin"].setpoint == 0.5
        assert figures["depth in skin"].measured == pytest.approx(0.5, abs=0.01)
        assert figures["speed"].setpoint == 100.0
        assert figures["current"].measured is not None
        assert snap.strokes > 10 and snap.lease_remaining_ms > 0
        # Telemetry's age is on the pen's clock (virtual here), so fresh telemetry is fresh.
        assert snap.telemetry_age_s is not None and snap.telemetry_age_s < 0.5
        assert snap.problem is None, snap.problem
        assert snap.link["telemetry_received"] > 0 and snap.link["rtt_smoothed_ms"] is not None
        text = render_text(mon.snapshot())
        for expected in ("running", "RUNNING", sim.serial, "depth in skin (mm)", "0.500",
                         "speed (Hz)", "100.0", "current (A)", "temperature (°C)", "strokes",
                         "impressions", "round trip", "retransmissions", "timeouts",
                         "telemetry received", "lost", "garbage", "bad CRC", "lease remaining",
                         "latched faults: none", KEYS_HELP):
            assert expected in text, expected


def test_an_injected_fault_is_shown_with_its_description(sim):
    with PenController.connect(sim.url, calibration=true_calibration(sim),
                               clock=sim.clock) as pen:
        run_needle(pen)
        mon = Monitor(pen=pen)
        pen.pause(0.1)
        sim.inject("jam")
        pen.wait_for_state(State.FAULT, timeout_s=3.0)
        _until(pen, lambda: Fault.JAM in pen.telemetry.faults)
        snap = mon.snapshot()
        assert ("JAM", FAULT_DESCRIPTIONS[Fault.JAM]) in snap.faults
        text = render_text(mon.snapshot(), width=140)
        assert "FAULT latched" in text and "press c to clear" in text
        assert "JAM" in text and FAULT_DESCRIPTIONS[Fault.JAM] in text
        assert mon.handle_key("c")  # the cause is still there: refused, and it says why
        assert "not cleared" in mon.message and pen.state is State.FAULT


def test_the_estop_key_really_estops_the_pen(sim):
    with PenController.connect(sim.url, calibration=true_calibration(sim),
                               clock=sim.clock) as pen:
        run_needle(pen)
        mon = Monitor(pen=pen)
        assert sim.firmware.state is FirmwareState.RUNNING
        assert mon.handle_key("e") is True
        assert sim.firmware.state is FirmwareState.ESTOP  # written at once, in this thread
        pen.wait_for_state(State.ESTOP)
        assert "E-STOP latched" in render_text(mon.snapshot())
        assert mon.handle_key("c")  # clearing leaves the pen idle; the needle stays stopped
        assert pen.state is State.IDLE and sim.firmware.state is FirmwareState.IDLE
        assert mon.handle_key(" ")  # space too
        assert sim.firmware.state is FirmwareState.ESTOP
        assert mon.handle_key("q") is False and mon.quit.is_set()


def test_link_loss_is_shown_and_r_reconnects_without_resuming(sim):
    mon = Monitor(sim.url, clock=sim.clock)
    assert mon.connect()
    try:
        sim.disconnect()
        mon.pen.wait_for_state(State.DISCONNECTED, timeout_s=3.0)
        text = render_text(mon.snapshot(), width=160)
        assert "link lost:" in text and "press r to reconnect" in text
        assert "not confirmed" in mon.estop().lower()  # says so instead of pretending
        mon.handle_key("r")
        assert "reconnect failed" in mon.message  # the pen is still gone
        sim.reconnect()
        mon.handle_key("r")
        assert mon.message.startswith("reconnected"), mon.message
        assert mon.pen.state in (State.IDLE, State.FAULT, State.ESTOP)
        assert sim.firmware.state is not FirmwareState.RUNNING
        assert "link lost" not in render_text(mon.snapshot())
    finally:
        mon.close()


def test_a_stored_calibration_gives_depth_in_skin(sim):
    mon = Monitor(sim.url, clock=sim.clock)
    assert mon.connect()
    try:
        assert "uncalibrated" in render_text(mon.snapshot())
        assert "depth in skin (mm)" not in render_text(mon.snapshot())
        # The hint is a command to copy, for this very pen (issue 16, item 3).
        assert mon.calibration_note.endswith(f"calibrate: smp calibrate --port {sim.url} --auto")
    finally:
        mon.close()
    calibration = true_calibration(sim, technician="ana")
    CalibrationStore().save(calibration)
    mon = Monitor(sim.url, clock=sim.clock)
    assert mon.connect()
    try:
        _until(mon.pen, lambda: mon.pen.telemetry is not None)
        text = render_text(mon.snapshot())
        assert "depth in skin (mm)" in text and calibration.calibration_id in text
        assert "uncalibrated" not in text
    finally:
        mon.close()


@pytest.mark.realtime  # the command line connects on wall time
def test_smp_monitor_once_prints_a_snapshot(sim):
    result = CliRunner().invoke(main, ["monitor", "--once", "--port", sim.url])
    assert result.exit_code == 0, result.output
    assert sim.serial in result.output and "idle" in result.output
    assert "uncalibrated" in result.output and "latched faults: none" in result.output
    assert "round trip" in result.output


@pytest.mark.realtime  # the command line connects on wall time
def test_smp_monitor_live_runs_for_its_duration_and_survives_link_loss(sim):
    result = CliRunner().invoke(main, ["monitor", "--duration", "0.3", "--refresh-hz", "20",
                                       "--port", sim.url])
    assert result.exit_code == 0, result.output
    assert "keys are off" in result.output and sim.serial in result.output


def test_smp_monitor_once_without_a_pen_fails_cleanly():
    result = CliRunner().invoke(main, ["monitor", "--once", "--port", "/dev/no-such-pen"])
    assert result.exit_code != 0
    assert "cannot open port" in result.output and "Traceback" not in result.output


def test_smp_monitor_help_teaches_with_examples():
    result = CliRunner().invoke(main, ["monitor", "--help"])
    assert result.exit_code == 0
    for expected in ("--refresh-hz", "--once", "--duration", "E-stop", "smp monitor --port",
                     "reconnect"):
        assert expected in result.output


@pytest.mark.realtime  # a real process in a real pseudo-terminal
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a pseudo-terminal")
def test_keys_typed_in_a_real_terminal_estop_and_quit():
    """The whole path: `smp monitor` in a pseudo-terminal, keys read in cbreak mode."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command as a user types it
        os.execv(sys.executable, [sys.executable, "-m", "smpdevice", "monitor",
                                  "--duration", "300", "--port", "pensim://?seed=5"])  # q ends it
    out = bytearray()

    def read_until(needle: bytes, timeout_s: float = 120.0) -> None:  # generous: loaded CI
        deadline = time.monotonic() + timeout_s
        while needle not in out:
            assert time.monotonic() < deadline, f"{needle!r} never shown:\n{out.decode()}"
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                with contextlib.suppress(OSError):
                    out.extend(os.read(fd, 65536))

    try:
        read_until(b"keys:")
        read_until(b"idle")
        os.write(fd, b"e")
        read_until(b"E-STOP latched")
        os.write(fd, b"q")
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_the_monitor_logic_imports_no_presentation():
    """Issue 13: rich (and click) live in smpdevice/ui/ and cli/; the monitor's logic is below."""
    import ast
    from pathlib import Path

    import smpdevice.monitor

    tree = ast.parse(Path(smpdevice.monitor.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    presentation = {name for name in imported
                    if name.split(".")[0] in ("rich", "click")
                    or name.startswith(("smpdevice.ui", "smpdevice.cli"))}
    assert presentation == set()
