"""Review 13 (REVSIM): readers of a real-time pen are woken when the pen writes (the simulator
now notifies only when a thread waits in a read). A reader blocked in read/read_chunks with a
long timeout must get each frame soon after the pen wrote it, also over the PTY bridge, and
must be woken by close() and disconnect()."""

from __future__ import annotations

import itertools
import os
import select
import threading
import time

import pytest

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from simulators import PenModel, PenSimulator
from simulators.host_link import LinkDisconnected
from simulators.reach import PtyBridge

pytestmark = pytest.mark.realtime  # real-time pens, wall-clock bounds

LATE_S = 0.25  # a frame read this long after the pen wrote it (10 Hz telemetry) was not woken


def test_read_chunks_gets_every_telemetry_frame_on_time() -> None:
    with PenSimulator(model=PenModel(seed=1, telemetry_default_hz=10)) as sim:
        port = sim.open_port()
        got: list[float] = []
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            chunks = port.read_chunks(5.0)  # far past the next frame: only a notify wakes it
            assert chunks
            got.append(time.monotonic())
        gaps = [b - a for a, b in itertools.pairwise(got)]
        assert len(got) >= 10 and max(gaps) < LATE_S, gaps


def test_read_of_size_wakes_for_each_byte_run() -> None:
    with PenSimulator(model=PenModel(seed=2, telemetry_default_hz=20)) as sim:
        port = sim.open_port()
        t0 = time.monotonic()
        data = port.read(300, timeout_s=5.0)  # several frames, written 50 ms apart
        assert len(data) == 300 and time.monotonic() - t0 < 3.0


def test_reader_woken_by_close_and_disconnect() -> None:
    for how in ("close", "disconnect"):
        sim = PenSimulator(model=PenModel(seed=3, telemetry_default_hz=0))
        port = sim.open_port()
        result: list[object] = []
        started = threading.Event()

        def reader(port=port, result=result, started=started) -> None:
            started.set()
            try:
                result.append(port.read_chunks(30.0))
            except LinkDisconnected as exc:
                result.append(exc)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        started.wait(5.0)
        deadline = time.monotonic() + 5.0
        while sim._readers == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        t0 = time.monotonic()
        getattr(sim, how)()
        t.join(5.0)
        sim.close()
        assert not t.is_alive() and time.monotonic() - t0 < 2.0, how
        assert isinstance(result[0], LinkDisconnected), (how, result)


def test_pty_bridge_replies_and_telemetry() -> None:
    with PenSimulator(model=PenModel(seed=4, telemetry_default_hz=10)) as sim, \
            PtyBridge(sim) as bridge:
        fd = os.open(bridge.path, os.O_RDWR | os.O_NOCTTY)
        try:
            time.sleep(0.1)  # wall: let the pen boot (real time by design here)
            dec = StreamDecoder()
            seen: dict[str, list[float]] = {"Telemetry": [], "Pong": [], "Ack": []}
            os.write(fd, encode(m.Ping(9), 1))
            t_ping = time.monotonic()
            end = time.monotonic() + 1.2
            while time.monotonic() < end:
                r, _, _ = select.select([fd], [], [], 0.5)
                if not r:
                    continue
                for f in dec.feed(os.read(fd, 4096)):
                    seen.setdefault(type(f.message).__name__, []).append(time.monotonic())
            pong = seen.get("Pong") or seen.get("PingReply") or []
            others = {k: len(v) for k, v in seen.items()}
            assert len(seen["Telemetry"]) >= 8, others
            assert pong and pong[0] - t_ping < LATE_S, others
        finally:
            os.close(fd)
