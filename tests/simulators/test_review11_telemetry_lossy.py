"""Review 11 (REVC C08): docs/protocol.md section 12, 'TELEMETRY is lossy': at BAUD_RATE a pen
skips a TELEMETRY frame while its transmit queue holds bytes, so a reply keeps
REPLY_DEADLINE_MS at every telemetry rate it accepts, and the gap shows in telemetry_seq."""

from __future__ import annotations

import itertools

import pytest

from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.timing import BAUD_RATE, REPLY_DEADLINE_MS
from simulators import PenSimulator, VirtualClock

FRAME_S = 13 * 10 / BAUD_RATE  # a PING or a PONG on the wire


def _telemetry_for(sim, port, decoder, rate_hz: int, seconds: float) -> list[m.Telemetry]:
    port.write(encode(m.SetTelemetryRate(rate_hz), 1))
    out = []
    for _ in range(round(seconds / 0.005)):
        sim.advance(0.005)
        out += [f.message for f in decoder.feed(port.read(1 << 20, 0))
                if isinstance(f.message, m.Telemetry)]
    return out


def _ping_late_ms(sim, port, decoder) -> float:
    """How long after the PING's last byte the PONG's last byte arrived, less its wire time."""
    sent_s = sim.clock.now() + FRAME_S
    port.write(encode(m.Ping(5), 9))
    while sim.clock.now() < sent_s + 5.0:
        sim.advance(0.0005)
        if any(isinstance(f.message, m.Pong) for f in decoder.feed(port.read(1 << 20, 0))):
            return (sim.clock.now() - sent_s - FRAME_S) * 1000
    raise AssertionError("no PONG within 5 s")


@pytest.mark.parametrize("rate_hz", [100, 280, 500, 1000])
def test_a_reply_keeps_the_deadline_at_every_telemetry_rate_the_pen_accepts(rate_hz) -> None:
    with PenSimulator(clock=VirtualClock(), baud=BAUD_RATE) as sim:
        port, decoder = sim.open_port(), StreamDecoder()
        sim.advance(0.1)
        _telemetry_for(sim, port, decoder, rate_hz, 1.0)
        for _ in range(5):  # several PINGs, each at another phase of the telemetry
            late_ms = _ping_late_ms(sim, port, decoder)
            assert late_ms <= REPLY_DEADLINE_MS, f"PONG {late_ms:.1f} ms late at {rate_hz} Hz"
            sim.advance(0.0013)


def test_skipped_telemetry_shows_as_a_gap_in_telemetry_seq() -> None:
    with PenSimulator(clock=VirtualClock(), baud=BAUD_RATE) as sim:
        port, decoder = sim.open_port(), StreamDecoder()
        sim.advance(0.1)
        frames = _telemetry_for(sim, port, decoder, 1000, 1.0)[5:]  # past the rate change
        seqs = [t.telemetry_seq for t in frames]
        steps = {b - a for a, b in itertools.pairwise(seqs)}
        wire_hz = BAUD_RATE / 10 / 41  # 41-byte TELEMETRY frames back to back
        assert 0.85 * wire_hz <= len(frames) <= wire_hz, len(frames)  # the wire is full ...
        assert min(steps) >= 2 and max(steps) <= 5, steps  # ... and the counter counts them all
        assert sim.telemetry_skipped >= 700
        assert seqs[-1] - seqs[0] == pytest.approx(1000 * 0.97, rel=0.05)


def test_telemetry_the_wire_carries_is_never_skipped() -> None:
    """100 Hz at BAUD_RATE fills a third of the wire: every frame goes out, no gap."""
    with PenSimulator(clock=VirtualClock(), baud=BAUD_RATE) as sim:
        port, decoder = sim.open_port(), StreamDecoder()
        sim.advance(0.1)
        frames = _telemetry_for(sim, port, decoder, 100, 1.0)
        seqs = [t.telemetry_seq for t in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 99
        assert sim.telemetry_skipped == 0


def test_without_baud_nothing_is_paced_and_nothing_skipped() -> None:
    with PenSimulator(clock=VirtualClock()) as sim:
        port, decoder = sim.open_port(), StreamDecoder()
        sim.advance(0.1)
        frames = _telemetry_for(sim, port, decoder, 1000, 0.2)
        seqs = [t.telemetry_seq for t in frames]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) >= 195
        assert sim.telemetry_skipped == 0


def test_a_controller_runs_a_pen_at_baud_rate_asked_for_1khz_telemetry() -> None:
    """The reviewer's run: ARM failed 'after 4 tries ... Check the cable' as every reply
    waited behind seconds of telemetry."""
    from smpdevice.control import PenController, State
    from tests.smpdevice.conftest import CROWN, true_calibration

    url = f"pensim://?seed=2&clock=virtual&baud={BAUD_RATE}"
    pen = PenController.connect(url, lease_ms=200, telemetry_hz=1000)
    try:
        sim = pen.link.port.simulator
        pen.set_calibration(true_calibration(sim))
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        pen.start_needle()
        assert pen.state is State.RUNNING
        pen.pause(0.5)  # the needle runs, telemetry at what the wire carries
        pen.stop_needle()
        assert pen.state is State.ARMED
        assert sim.telemetry_skipped > 0
    finally:
        pen.close()
