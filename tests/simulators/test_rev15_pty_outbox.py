"""Review 15 (K2): the PTY bridge (`smp sim --pty`) keeps replies and EVENTs whole when the pty
is full, and lets the oldest whole TELEMETRY frames give way instead.

docs/protocol.md section 12: "TELEMETRY is lossy; replies and EVENTs are not". The bridge used
to drop the whole chunk on BlockingIOError (the EVENT with it) and the rest of a short write (a
frame cut in half on the line). The outbox is tested alone over a real pty (no clock: what a
full pty takes is the condition), then the bridge on a real-time simulator whose host pauses.
"""

from __future__ import annotations

import os
import time
import tty

import pytest
import serial

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, FirmwareState
from firmware_protocol.frame import StreamDecoder, encode
from simulators.pen_model import PenModel
from simulators.reach import PtyBridge, _Outbox
from simulators.rx_buffer import RX_LIMIT
from simulators.sim import PenSimulator

WAIT_S = 10.0


def _telemetry(seq: int) -> bytes:
    return encode(m.Telemetry(seq, *[0] * 12), 0)


def test_a_full_pty_keeps_every_reply_whole_and_drops_only_old_telemetry() -> None:
    master, slave = os.openpty()
    try:
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        os.set_blocking(slave, False)
        outbox = _Outbox(master)
        seq = 0
        while not outbox.pending:  # fill the pty (nobody reads it) until a write falls short
            outbox.send([_telemetry(seq)])
            seq += 1
        filled = seq
        # More than RX_LIMIT behind it, replies and EVENTs among the telemetry, some sent
        # together (a reply and its EVENT), some alone.
        tokens = list(range(200))
        for token in tokens:
            pong = encode(m.Pong(token), token % 255 + 1)
            event = encode(m.Event(EventCode.STATE_CHANGED, 0, 0, token), 0)
            outbox.send([pong, event] if token % 2 else [pong])
            outbox.send([_telemetry(seq + i) for i in range(10)])
            seq += 10
        assert (seq - filled) * len(_telemetry(0)) > RX_LIMIT  # telemetry had to give way
        assert outbox.stats["rx_telemetry_dropped"] > 0
        size = len(_telemetry(0))
        # past SCAN_MAX replies at the front, the newest telemetry is what goes (rx_buffer)
        assert outbox.stats["rx_overflow_bytes"] % size == 0  # never a reply or an EVENT
        decoder, got = StreamDecoder(), []
        while outbox.pending or got[-1:] != [b""]:  # read the pty dry, flushing as it drains
            try:
                data = os.read(slave, 65536)
            except BlockingIOError:
                data = b""
            got.append(data)
            outbox.flush()
        frames = [f.message for f in decoder.feed(b"".join(got))]
    finally:
        os.close(master)
        os.close(slave)
    assert decoder.stats.bad_crc == decoder.stats.garbage_bytes == 0, decoder.stats
    assert [x.token for x in frames if isinstance(x, m.Pong)] == tokens
    assert [x.uptime_ms for x in frames if isinstance(x, m.Event)] == tokens[1::2]
    seqs = [x.telemetry_seq for x in frames if isinstance(x, m.Telemetry)]
    assert seqs == sorted(seqs) and len(seqs) == seq - outbox.stats["rx_telemetry_dropped"] \
        - outbox.stats["rx_overflow_bytes"] // size


@pytest.mark.realtime
def test_lease_lapse_event_reaches_a_pty_host_that_paused_reading() -> None:
    sim = PenSimulator()  # real time: the host's pause is the condition under test
    try:
        deadline = time.monotonic() + WAIT_S
        while sim.firmware.state == FirmwareState.BOOTING and time.monotonic() < deadline:
            time.sleep(0.005)  # real time: the boot takes ~50 ms
        with PtyBridge(sim) as bridge:
            port = serial.Serial(bridge.path, timeout=0.05)
            decoder = StreamDecoder()
            commands = [m.IdentifyRequest(), m.SetTelemetryRate(1000),
                        m.SetSetpoints(1000, 10000, 500, 100000), m.Arm(), m.LeaseRenew(2000),
                        m.NeedleStart()]
            replies = 0
            for seq, msg in enumerate(commands, start=1):
                port.write(encode(msg, seq))
                deadline = time.monotonic() + WAIT_S
                while replies < seq and time.monotonic() < deadline:
                    for f in decoder.feed(port.read(max(1, port.in_waiting))):
                        replies += isinstance(f.message, (m.Ack, m.Identify))
            assert replies == len(commands)
            time.sleep(2.6)  # the host reads nothing meanwhile; the lease lapses at 2 s
            # Beyond the lapse: pings sent while the pty is still full are answered, in order.
            port.write(b"".join(encode(m.Ping(0xB000 + i), 10 + i) for i in range(40)))
            got: list[m.Message] = []
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                got += [f.message for f in decoder.feed(port.read(max(1, port.in_waiting)))]
                if len([x for x in got if isinstance(x, m.Pong)]) == 40 and any(
                        isinstance(x, m.Telemetry) and x.state == FirmwareState.FAULT
                        for x in got):
                    break
            assert sim.firmware.state == FirmwareState.FAULT
            events = [x.event for x in got if isinstance(x, m.Event)]
            assert events == [EventCode.FAULT_LATCHED], (
                f"EVENT FAULT_LATCHED lost on the pty: events {events}, {decoder.stats}")
            assert [x.token for x in got if isinstance(x, m.Pong)] == \
                [0xB000 + i for i in range(40)]
            assert decoder.stats.bad_crc == decoder.stats.garbage_bytes == 0, decoder.stats
            assert bridge.stats["rx_telemetry_dropped"] > 0  # the pty was full: telemetry went
            port.close()
    finally:
        sim.close()


# Wall time (CI, session 21): the host writes 78 KB of PINGs at once into a pty that takes a
# few KiB, so frames are cut where its writes fall short; beside two busy loops the writer
# thread then waited past the real-time pen's 50 ms inter-byte timeout for its turn, and the
# pen gave the cut PING up (as a pen must: 1-6 of 6,000 lost, never a reply cut or reordered).
@pytest.mark.realtime
def test_replies_alone_fill_the_pty_and_all_arrive_once_the_host_reads() -> None:
    """No telemetry at all (nothing wakes the pen -> host thread): thousands of PONGs the host
    does not read fill the pty; the outbox holds the rest and the host -> pen thread sends it
    when the pty takes bytes again (POLLOUT). Every reply arrives, in order, none cut."""
    sim = PenSimulator(model=PenModel(telemetry_default_hz=0))
    try:
        with PtyBridge(sim) as bridge:
            port = serial.Serial(bridge.path, timeout=0.05)
            tokens = list(range(6000))  # 78 KB of PONGs: several times what a pty holds
            port.write(b"".join(encode(m.Ping(t), t % 255 + 1) for t in tokens))
            deadline = time.monotonic() + WAIT_S
            while not bridge._outbox.pending and time.monotonic() < deadline:
                time.sleep(0.005)  # real time: the simulator answers as the bridge reads
            assert bridge._outbox.pending, "the pty never filled"
            decoder, pongs = StreamDecoder(), []
            deadline = time.monotonic() + WAIT_S
            while len(pongs) < len(tokens) and time.monotonic() < deadline:
                pongs += [f.message.token for f in decoder.feed(port.read(max(
                    1, port.in_waiting))) if isinstance(f.message, m.Pong)]
            assert pongs == tokens, f"{len(pongs)} PONGs, {decoder.stats}, {bridge.stats}"
            assert decoder.stats.bad_crc == decoder.stats.garbage_bytes == 0, decoder.stats
            port.close()
    finally:
        sim.close()
