"""Each link fault, observed on the byte stream the host reads."""

from __future__ import annotations

import pytest
import serial

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from simulators import LinkFaultConfig, PenSimulator, VirtualClock, parse_fault_spec
from simulators.sim import LinkDisconnected
from simulators.testing import PenHost
from tests.simulators.helpers import make, state

PING = encode(m.Ping(1), 1)
PONG = encode(m.Pong(1), 1)


def _quiet(seed: int = 0, **link) -> tuple[PenSimulator, object]:
    """A booted virtual pen with telemetry off, and a raw port."""
    sim = PenSimulator(seed=seed, clock=VirtualClock(), link_faults=LinkFaultConfig(**link))
    port = sim.open_port()
    sim.advance(0.06)
    port.write(encode(m.SetTelemetryRate(0), 99))
    port.read(1 << 16, 0)
    return sim, port


def test_drop_frames() -> None:
    sim, port = _quiet()
    sim.link.drop_next_frames(1)
    port.write(PING)
    assert port.read(100, 0) == b""
    port.write(PING)  # the host retransmits: the cached reply comes this time
    assert port.read(100, 0) == PONG


def test_corrupted_frame_fails_crc() -> None:
    sim, port = _quiet()
    sim.link.corrupt_next_frames(1)
    port.write(PING)
    data = port.read(100, 0)
    assert len(data) == len(PONG) and data != PONG
    dec = StreamDecoder()
    assert dec.feed(data) == [] and dec.stats.dropped_frames + dec.stats.garbage_bytes > 0


def test_duplicated_frame() -> None:
    sim, port = _quiet()
    sim.link.duplicate_next_frames(1)
    port.write(PING)
    assert port.read(100, 0) == PONG + PONG


def test_split_frame_arrives_in_two_writes() -> None:
    sim, port = _quiet()
    sim.link.split_next_frames(1)
    port.write(PING)
    first = port.read_chunk(0)
    assert 0 < len(first) < len(PONG)
    assert port.read_chunk(0) == b""  # the rest comes split_gap_s later
    sim.advance(0.002)
    assert first + port.read_chunk(0) == PONG


def test_junk_bytes_before_a_frame() -> None:
    sim, port = _quiet()
    sim.link.inject_junk(b"\x00\xaa\x13\x37")
    port.write(PING)
    data = port.read(100, 0)
    assert data == b"\x00\xaa\x13\x37" + PONG
    dec = StreamDecoder()
    assert [f.message for f in dec.feed(data)] == [m.Pong(1)] and dec.stats.garbage_bytes == 4


def test_delay() -> None:
    sim, port = _quiet(delay_s=0.05)
    sim.advance(0.1)
    port.read(1 << 16, 0)  # what was still in flight from booting
    port.write(PING)
    assert port.read(100, 0) == b""
    sim.advance(0.049)
    assert port.read(100, 0) == b""
    sim.advance(0.001)
    assert port.read(100, 0) == PONG


def test_stall_no_reply_then_recovers() -> None:
    sim, port = _quiet()
    sim.link.stall(sim.clock.now(), duration_s=0.1)
    port.write(PING)
    assert port.read(100, 0) == b""
    assert sim.firmware.executed[MsgType.PING] == 0  # it never reached the pen
    sim.advance(0.1)
    port.write(PING)
    assert port.read(100, 0) == PONG


def test_probabilistic_drop_and_flip_both_ways_repeat_with_seed() -> None:
    def run(seed: int) -> tuple[bytes, dict]:
        sim, port = _quiet(seed=seed, drop_p=0.02, flip_p=0.02)
        for i in range(200):
            port.write(encode(m.Ping(i), i % 255 + 1))
        data = port.read(1 << 16, 0)
        stats = dict(sim.link.stats)
        sim.close()
        return data, stats

    data, stats = run(5)
    assert stats["dropped_bytes"] > 0 and stats["flipped_bits"] > 0
    pongs = [f for f in StreamDecoder().feed(data) if f.message.TYPE == MsgType.PONG]
    assert 0 < len(pongs) < 200  # some commands or replies did not survive
    assert run(5) == (data, stats)
    assert run(6)[0] != data


@pytest.mark.parametrize("key", ["dup", "split", "junk"])
def test_probabilistic_frame_faults(key: str) -> None:
    plan = parse_fault_spec(f"{key}=0.5")
    sim = PenSimulator(clock=VirtualClock(), link_faults=plan)
    port = sim.open_port()
    sim.advance(0.5)
    stat = {"dup": "duplicated_frames", "split": "split_frames", "junk": "junk_bursts"}[key]
    assert sim.link.stats[stat] > 10
    dec = StreamDecoder()
    frames = dec.feed(port.read(1 << 20, 0) + b"")
    seqs = [f.message.telemetry_seq for f in frames if f.message.TYPE == MsgType.TELEMETRY]
    assert len(seqs) >= 40  # the decoder still finds the frames
    if key == "dup":
        assert len(seqs) > len(set(seqs))
    sim.close()


def test_disconnect_raises_and_reconnect_reaches_the_same_latched_pen() -> None:
    sim, host = make()
    host.start_needle(lease_ms=100)
    url = sim.url
    ser = serial.serial_for_url(url, timeout=0)
    sim.disconnect()
    with pytest.raises(serial.SerialException):
        ser.read(10)
    with pytest.raises(serial.SerialException):
        ser.write(PING)
    with pytest.raises(LinkDisconnected):
        host.port.write(PING)
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(url)
    sim.advance(0.2)  # the host fell silent: the lease lapses
    sim.reconnect()
    with pytest.raises(serial.SerialException):
        ser.read(10)  # a port from before the disconnect stays dead
    ser2 = serial.serial_for_url(url, timeout=0)
    again = PenHost(_SerialAdapter(ser2))
    assert again.request(m.IdentifyRequest()).TYPE == MsgType.IDENTIFY
    assert state(sim) is S.FAULT and sim.firmware.faults == Fault.LEASE_EXPIRED
    ser2.close()


def test_scheduled_stall_and_disconnect_from_spec() -> None:
    sim = PenSimulator(clock=VirtualClock(), link_faults="stall@0.1-0.2,disconnect@0.3-0.4")
    port = sim.open_port()
    sim.advance(0.15)
    port.read(1 << 16, 0)
    port.write(PING)
    assert port.read(100, 0) == b""
    sim.advance(0.1)
    port.write(PING)
    assert PONG in port.read(1 << 16, 0)
    sim.advance(0.1)
    assert not sim.connected
    sim.advance(0.1)
    assert sim.connected and sim.generation == 1
    sim.close()


class _SerialAdapter:
    """PenHost speaks read(size, timeout_s); a pyserial port has its timeout preset."""

    def __init__(self, ser: serial.SerialBase) -> None:
        self.ser = ser

    def write(self, data: bytes) -> int:
        return self.ser.write(data)

    def read(self, size: int, timeout_s: float | None = None) -> bytes:
        self.ser.timeout = timeout_s
        return self.ser.read(size)
