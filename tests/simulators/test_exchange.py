"""`HostPort.exchange`: a command and its replies in one call, as the PTY and TCP bridges use it.

Its fast path (nothing queued, no link fault) skips the simulator's queues; these tests hold it
to what the queues do: the same chunks, in the same order, at the same (virtual) time.
"""

from __future__ import annotations

import os
import select
import threading
import tty

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import LimitField, MsgType, NackReason
from firmware_protocol.messages import HOST_TO_PEN, REGISTRY
from simulators import LinkFaultConfig, PenSimulator, VirtualClock
from simulators.reach import PtyBridge
from tests.firmware_protocol.helpers import sample
from tests.simulators.helpers import valid_command

PING = encode(m.Ping(7), 7)
PONG = encode(m.Pong(7), 7)


def _booted(seed: int = 0, **link) -> PenSimulator:
    sim = PenSimulator(seed=seed, clock=VirtualClock(), link_faults=LinkFaultConfig(**link))
    sim.advance(0.06)
    return sim


def _drain(port) -> list[bytes]:
    chunks = []
    while chunk := port.read_chunk(0):
        chunks.append(chunk)
    return chunks


def test_exchange_returns_the_reply_and_leaves_nothing_to_read() -> None:
    sim = _booted()
    port = sim.open_port()
    assert port.exchange(PING) == [PONG]
    assert _drain(port) == []


def test_exchange_delivers_what_was_waiting_first() -> None:
    sim = _booted()
    port = sim.open_port()
    sim.advance(0.01)  # a TELEMETRY frame (100 Hz) is due and unread
    chunks = port.exchange(PING)
    assert len(chunks) == 2 and chunks[1] == PONG
    assert StreamDecoder().feed(chunks[0])[0].message.TYPE == MsgType.TELEMETRY


def test_exchange_with_a_split_reply_returns_the_first_part_only() -> None:
    sim = _booted(split_gap_s=0.002)
    port = sim.open_port()
    port.exchange(encode(m.SetTelemetryRate(0), 1))
    sim.link.split_next_frames(1)
    first = port.exchange(PING)
    assert len(first) == 1 and 0 < len(first[0]) < len(PONG)
    assert _drain(port) == []  # the rest is due split_gap_s later
    sim.advance(0.002)
    assert first[0] + b"".join(_drain(port)) == PONG


def test_exchange_of_a_dead_port_raises() -> None:
    sim = _booted()
    port = sim.open_port()
    sim.disconnect()
    try:
        port.exchange(PING)
    except ConnectionError:
        pass
    else:
        raise AssertionError("exchange on a disconnected port must raise LinkDisconnected")
    sim.reconnect()
    assert not port.alive
    assert sim.open_port().exchange(PING) == [PONG]


def test_a_reader_waiting_on_another_thread_does_not_get_the_reply() -> None:
    """The bridges' reader thread waits for telemetry; an exchange's replies are the
    caller's, so that thread neither takes them nor has anything to take."""
    sim = _booted()
    port = sim.open_port()
    port.exchange(encode(m.SetTelemetryRate(0), 1))
    got: list[bytes] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        got.append(port.read_chunk(0.3))

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(5)
    replies = [port.exchange(encode(m.Ping(i), i)) for i in range(1, 21)]
    thread.join(5)
    assert replies == [[encode(m.Pong(i), i)] for i in range(1, 21)]
    assert got == [b""]


def test_pty_bridge_answers_from_the_thread_that_read_the_command() -> None:
    """No hand-off per frame: the PONG is written by the bridge's host -> pen thread."""
    writers: list[str] = []
    with PenSimulator(seed=1) as sim, PtyBridge(sim) as bridge:
        write_out = bridge._write_out

        def spy(take):  # what the bridge takes (an exchange, a read) and writes at once
            def taken() -> list[bytes]:
                chunks = take()
                if any(PONG in chunk for chunk in chunks):
                    writers.append(threading.current_thread().name)
                return chunks

            return write_out(taken if take is not None else None)

        bridge._write_out = spy  # type: ignore[method-assign]
        fd = os.open(bridge.path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            os.write(fd, PING)
            decoder, frames = StreamDecoder(), []
            while not any(f.seq == 7 for f in frames):
                ready, _, _ = select.select([fd], [], [], 30.0)  # a hang guard, not a bound
                assert ready, "no PONG from the PTY bridge"
                frames += decoder.feed(os.read(fd, 4096))
        finally:
            os.close(fd)
    assert writers == ["pensim-pty-in"]


# -- the fast path against the queues: twins driven the two ways --------------------------
_HOST_TYPES = sorted(HOST_TO_PEN)


@st.composite
def _writes(draw) -> bytes:
    """What a host may write: a valid command, one with extreme fields, garbage, or a frame
    cut in two (the decoder then holds a partial frame: exchange's decoder path)."""
    kind = draw(st.sampled_from(["valid", "sample", "garbage", "pen_type"]))
    seq = draw(st.integers(0, 255))
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=24))
    if kind == "pen_type":
        cls = REGISTRY[draw(st.sampled_from(sorted(set(REGISTRY) - HOST_TO_PEN)))]
        return encode(sample(cls, draw(st.sampled_from(["lo", "mid", "hi"]))), seq)
    mtype = MsgType(draw(st.sampled_from(_HOST_TYPES)))
    msg = valid_command(mtype) if kind == "valid" else sample(
        REGISTRY[int(mtype)], draw(st.sampled_from(["lo", "mid", "hi"])))
    return encode(msg, seq)


_STEP = st.one_of(
    st.tuples(st.just("write"), _writes(), st.integers(0, 3)),
    st.tuples(st.just("advance"), st.integers(0, 40)),
    st.tuples(st.just("fault"), st.sampled_from(["split", "drop", "dup", "junk", "stall"])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 3), steps=st.lists(_STEP, max_size=40))
def test_exchange_is_write_then_read_of_what_is_due(seed: int, steps: list) -> None:
    """Byte for byte, chunk for chunk: exchange == write + read every due chunk."""
    twins = [_booted(seed), _booted(seed)]
    ports = [sim.open_port() for sim in twins]
    for step in steps:
        if step[0] == "write":
            _, data, cut = step
            parts = [data[:cut], data[cut:]] if 0 < cut < len(data) else [data]
            for part in parts:
                fast = ports[0].exchange(part)
                ports[1].write(part)
                assert fast == _drain(ports[1])
        elif step[0] == "advance":
            for sim in twins:
                sim.advance(step[1] / 1000)
            assert _drain(ports[0]) == _drain(ports[1])
        else:
            for sim in twins:
                link = sim.link
                {"split": link.split_next_frames, "drop": link.drop_next_frames,
                 "dup": link.duplicate_next_frames,
                 "junk": lambda link=link: link.inject_junk(b"\x00\xaa\x55"),
                 "stall": lambda s=sim: s.link.stall(s.clock.now(), 0.005)}[step[1]]()
    a, b = (sim.firmware for sim in twins)
    assert (a.state, a.faults, a.now_ms, a.executed, a.duplicates) == \
        (b.state, b.faults, b.now_ms, b.executed, b.duplicates)
    assert a.decoder.stats == b.decoder.stats
    assert twins[0].link.stats == twins[1].link.stats


def test_a_limit_changed_on_the_model_applies_to_the_next_setpoint() -> None:
    """The firmware computes its wire-unit limits once, not per command; a change to the model
    (as `smp sim --lease-max-ms` or QA makes) must still reach the next check."""
    sim = _booted()
    port = sim.open_port()
    port.exchange(encode(m.SetTelemetryRate(0), 1))
    fast = m.SetSetpoints(depth_um=1000, speed_centihz=17000, duty_permille=500,
                          period_us=100_000)
    assert port.exchange(encode(fast, 2)) == [encode(m.Ack(int(MsgType.SET_SETPOINTS)), 2)]
    sim.model.speed_max_hz = 150.0
    nack = m.Nack(int(MsgType.SET_SETPOINTS), int(NackReason.OUT_OF_LIMITS),
                  int(LimitField.SPEED))
    assert port.exchange(encode(fast, 3)) == [encode(nack, 3)]


def test_read_chunks_takes_every_due_chunk_in_order() -> None:
    """What the bridges' pen -> host thread writes per wake: at 1 kHz telemetry, several."""
    twins = [_booted(seed=2), _booted(seed=2)]
    ports = [sim.open_port() for sim in twins]
    for sim, port in zip(twins, ports, strict=True):
        port.exchange(encode(m.SetTelemetryRate(1000), 1))
        sim.advance(0.005)
    chunks = ports[0].read_chunks(0)
    assert len(chunks) == 5
    assert chunks == _drain(ports[1])
    assert ports[0].read_chunks(0) == []
