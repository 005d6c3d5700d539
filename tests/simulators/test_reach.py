"""End to end with pyserial over a pseudo-terminal and over TCP; the gauge server; `smp sim`."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import serial
from click.testing import CliRunner

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from simulators import GaugeServer, PenModel, PenSimulator, VirtualClock, read_gauge


def _talk(port: serial.SerialBase, sim: PenSimulator) -> None:
    """Identify, ping, and see telemetry arrive, over a real pyserial port."""
    deadline = time.monotonic() + 30  # hang guards (wall time: a loaded machine is slow)
    while sim.firmware.state is S.BOOTING:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    dec = StreamDecoder()
    port.reset_input_buffer()
    port.write(encode(m.IdentifyRequest(), 1) + encode(m.Ping(77), 2))
    got: dict[int, m.Message] = {}
    telemetry = 0
    while (len(got) < 2 or telemetry < 3) and time.monotonic() < deadline + 30:
        for frame in dec.feed(port.read(max(1, port.in_waiting))):
            if frame.seq:
                got[frame.seq] = frame.message
            elif frame.message.TYPE == MsgType.TELEMETRY:
                telemetry += 1
    assert got[1].TYPE == MsgType.IDENTIFY and got[1].serial_str == sim.serial
    assert got[2] == m.Pong(77)
    assert telemetry >= 3 and dec.stats.garbage_bytes == 0


def test_pty_end_to_end(pen_sim_pty) -> None:
    sim, path = pen_sim_pty
    assert path.startswith("/dev/")
    with serial.Serial(path, 115200, timeout=0.2) as port:
        _talk(port, sim)


def test_tcp_end_to_end(pen_sim_tcp) -> None:
    sim, url = pen_sim_tcp
    assert url.startswith("socket://127.0.0.1:")
    with serial.serial_for_url(url, timeout=0.2) as port:
        _talk(port, sim)
    with serial.serial_for_url(url, timeout=0.2) as port:  # a second client after the first
        _talk(port, sim)


def test_tcp_disconnect_closes_the_client(pen_sim_tcp) -> None:
    sim, url = pen_sim_tcp
    host, port_no = url.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port_no)), timeout=2) as sock:
        sock.recv(1)  # something arrives: the link is up
        sim.disconnect()
        deadline = time.monotonic() + 30  # a hang guard
        closed = False
        while time.monotonic() < deadline and not closed:
            with contextlib.suppress(TimeoutError):
                closed = sock.recv(4096) == b""
        assert closed


def test_gauge_server_line_protocol() -> None:
    ideal = PenModel(seed=2, gauge_noise_mm=0.0, gauge_nonlinearity_mm=0.0)  # exact readings
    with PenSimulator(model=ideal, clock=VirtualClock()) as sim:
        sim.firmware.physics.steps_um = 2000.0
        server = GaugeServer(sim.gauge)
        try:
            host, port = server.address
            assert host == "127.0.0.1"
            expected = round(sim.model.gain * 2.0 - sim.model.offset_mm, 4)
            assert read_gauge(host, port) == pytest.approx(expected, abs=1e-4)
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.sendall(b"HELLO\n")
                assert sock.makefile("rb").readline().startswith(b"ERR")
        finally:
            server.close()


def test_cli_help_teaches_with_an_example() -> None:
    from smpdevice.cli import main

    result = CliRunner().invoke(main, ["sim", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "--pty" in result.output and "socket://" in result.output


@pytest.mark.parametrize("mode", ["--pty", "--tcp"])
def test_cli_sim_serves_prints_address_first_and_stops_on_ctrl_c(mode: str) -> None:
    args = [sys.executable, "-m", "smpdevice.cli", "sim", "--seed", "4"]
    args += ["--pty"] if mode == "--pty" else ["--tcp", "0"]
    code = "import sys; from smpdevice.cli import main; sys.argv[0]='smp'; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, *args[3:]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline().strip()
        gauge_line = proc.stdout.readline().strip()
        assert gauge_line.startswith("gauge: tcp://127.0.0.1:")
        if mode == "--pty":
            assert first.startswith("/dev/")
            port = serial.Serial(first, 115200, timeout=0.2)
        else:
            assert first.startswith("socket://127.0.0.1:")
            port = serial.serial_for_url(first, timeout=0.2)
        with port:
            dec = StreamDecoder()
            deadline = time.monotonic() + 30  # a hang guard: the process may start slowly
            ident = None
            while ident is None and time.monotonic() < deadline:
                port.write(encode(m.IdentifyRequest(), 1))
                end = time.monotonic() + 0.3
                while ident is None and time.monotonic() < end:
                    for frame in dec.feed(port.read(max(1, port.in_waiting))):
                        if frame.seq == 1:
                            ident = frame.message
            assert ident is not None and ident.serial_str.startswith("SMP-")
        gauge_host, gauge_port = gauge_line.split()[1].removeprefix("tcp://").split(":")
        assert read_gauge(gauge_host, int(gauge_port)) == 0.0  # retracted
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
