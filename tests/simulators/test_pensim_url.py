"""The pyserial URL handler pensim:// and lookup()."""

from __future__ import annotations

import time

import pytest
import serial

import simulators
from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from simulators import DeviceFault, PenSimulator, VirtualClock, lookup


def _wait_for(predicate, timeout_s: float = 30.0) -> None:  # a hang guard
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def _request(port: serial.SerialBase, msg: m.Message, seq: int, timeout_s: float = 30.0):
    dec = StreamDecoder()
    port.write(encode(msg, seq))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for frame in dec.feed(port.read(max(1, port.in_waiting))):
            if frame.seq == seq:
                return frame.message
    return None


def test_importing_simulators_registers_the_handler() -> None:
    assert "simulators" in serial.protocol_handler_packages


def test_fresh_simulator_from_options_is_closed_with_the_port() -> None:
    port = serial.serial_for_url("pensim://?seed=3&lease=1500&telemetry=0", timeout=0.5)
    sim = lookup(port)
    assert isinstance(sim, PenSimulator) and sim.seed == 3 and not sim.virtual
    ident = _request(port, m.IdentifyRequest(), 1)
    assert ident.serial_str == sim.serial and ident.lease_max_ms == 1500
    assert lookup(sim.url) is sim
    port.close()
    assert sim.closed and lookup(sim.url) is None


def test_attach_by_name_reaches_the_same_pen_with_latched_faults(pen_sim_url: str) -> None:
    sim = lookup(pen_sim_url)
    _wait_for(lambda: sim.firmware.state is S.IDLE)
    with serial.serial_for_url(pen_sim_url, timeout=0.5) as port:
        _request(port, m.SetSetpoints(1000, 10000, 1000, 100_000), 1)
        _request(port, m.Arm(), 2)
        sim.inject(DeviceFault.CARTRIDGE_REMOVED)
        _wait_for(lambda: sim.firmware.state is S.FAULT)
    with serial.serial_for_url(pen_sim_url, timeout=0.5) as port:  # reopen: same pen
        assert _request(port, m.IdentifyRequest(), 1).serial_str == sim.serial
        reply = _request(port, m.ClearFaults(), 2)
        assert (reply.TYPE, reply.reason) == (MsgType.NACK, 9)
    assert sim.firmware.faults == Fault.CARTRIDGE_REMOVED and not sim.closed


def test_read_honours_timeout_and_in_waiting() -> None:
    with PenSimulator(clock=VirtualClock()) as sim:
        port = serial.serial_for_url(sim.url, timeout=0.05)
        sim.advance(0.06)  # BOOTED event and a telemetry frame
        assert port.in_waiting > 0
        port.reset_input_buffer()
        assert port.in_waiting == 0
        t0 = time.monotonic()
        assert port.read(10) == b""  # virtual clock: nothing comes without advancing
        assert time.monotonic() - t0 < 10.0  # its timeout ended the read (a hang guard)
        port.timeout = 0
        port.write(encode(m.Ping(9), 4))
        assert port.read(100) == encode(m.Pong(9), 4)
        port.close()
        with pytest.raises(serial.PortNotOpenError):
            port.read(1)


def test_unknown_name_and_option_are_clear_errors() -> None:
    with pytest.raises(serial.SerialException, match="no simulator named"):
        serial.serial_for_url("pensim://nobody")
    with pytest.raises(serial.SerialException, match="unknown pensim option"):
        serial.serial_for_url("pensim://?colour=red")
    with pytest.raises(serial.SerialException, match="bad pensim option"):
        serial.serial_for_url("pensim://?faults=frobnicate@1")


def test_faults_and_baud_options() -> None:
    port = serial.serial_for_url("pensim://?faults=dup%3D1&baud=115200&name=paced", timeout=5)
    sim = simulators.lookup("pensim://paced")
    assert sim is not None and sim.baud == 115200 and sim.link.config.dup_p == 1.0
    _wait_for(lambda: sim.firmware.state is S.IDLE)
    port.reset_input_buffer()
    port.write(encode(m.SetTelemetryRate(0), 1))
    # both copies of its ACK: no telemetry after them (wall time: a sleep here was not enough
    # for the telemetry in flight on a loaded machine), then look at one reply only
    decoder, acks = StreamDecoder(), []

    def both_acks() -> bool:
        acks.extend(f for f in decoder.feed(port.read(max(1, port.in_waiting))) if f.seq == 1)
        return len(acks) >= 2

    _wait_for(both_acks)
    port.reset_input_buffer()
    port.write(encode(m.Ping(1), 2))
    pong = encode(m.Pong(1), 2)
    assert port.read(2 * len(pong)) == pong + pong  # every frame duplicated
    port.close()


def test_real_time_lease_expiry_stops_the_needle(pen_sim_url: str) -> None:
    sim = lookup(pen_sim_url)
    _wait_for(lambda: sim.firmware.state is S.IDLE)
    with serial.serial_for_url(pen_sim_url, timeout=0.5) as port:
        for seq, msg in enumerate(
            [m.SetSetpoints(1000, 10000, 1000, 100_000), m.Arm(), m.LeaseRenew(100),
             m.NeedleStart()], start=1):
            assert _request(port, msg, seq).TYPE == MsgType.ACK
        _wait_for(lambda: sim.firmware.state is S.FAULT)  # the host fell silent
        assert sim.firmware.faults == Fault.LEASE_EXPIRED


def test_a_second_open_of_the_same_pen_is_refused_until_the_first_closes() -> None:
    with PenSimulator(clock=VirtualClock(), name="exclusive") as sim:
        first = serial.serial_for_url("pensim://exclusive", timeout=0)
        with pytest.raises(serial.SerialException, match=r"pensim://exclusive is in use"):
            serial.serial_for_url("pensim://exclusive", timeout=0)
        # the refused opener got no share of the pen's bytes: the first port still has them all
        first.write(encode(m.Ping(7), 3))
        assert first.read(100) == encode(m.Pong(7), 3)
        first.close()
        with serial.serial_for_url("pensim://exclusive", timeout=0) as second:  # free again
            second.write(encode(m.Ping(8), 4))
            assert second.read(100) == encode(m.Pong(8), 4)
        assert sim.open_ports == 0


def test_a_named_fresh_simulator_is_owned_by_its_opener() -> None:
    owner = serial.serial_for_url("pensim://?name=owned&telemetry=0", timeout=0.5)
    try:
        with pytest.raises(serial.SerialException, match="in use"):
            serial.serial_for_url("pensim://owned")
    finally:
        owner.close()


def test_a_port_killed_by_a_disconnect_does_not_hold_the_pen() -> None:
    with PenSimulator(clock=VirtualClock(), name="replugged") as sim:
        dead = serial.serial_for_url(sim.url, timeout=0)
        sim.disconnect()
        sim.reconnect()  # a real tty: the old descriptor is dead, a new open works
        with serial.serial_for_url(sim.url, timeout=0) as port:
            port.write(encode(m.Ping(1), 1))
            assert port.read(100) == encode(m.Pong(1), 1)
        with pytest.raises(serial.SerialException):
            dead.write(b"x")
        dead.close()


def test_in_process_taps_do_not_take_the_port() -> None:
    with PenSimulator(clock=VirtualClock(), name="tapped") as sim:
        tap = sim.open_port()  # a QA tap (PenHost, bridges) is not an exclusive owner
        with serial.serial_for_url(sim.url, timeout=0) as port:
            assert port.is_open
        tap.close()
