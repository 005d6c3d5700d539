"""Review 20 (G1, G3, D2): the telemetry schedule and the first telemetry_seq, as
docs/protocol.md section 12 states them, held against the simulated pen."""

from __future__ import annotations

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import decode_frame
from firmware_protocol.timing import BOOT_MAX_MS
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel


def _telemetry(fw: PenFirmware) -> list[m.Telemetry]:
    msgs = [decode_frame(raw).message for raw in fw.take_frames()]
    return [t for t in msgs if isinstance(t, m.Telemetry)]


def test_first_frame_is_seq_0_in_the_10th_tick_counting_the_boot_tick() -> None:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(BOOT_MAX_MS - 1):
        fw.step()
    assert _telemetry(fw) == []  # none while BOOTING
    for _ in range(30):
        fw.step()
    got = [(t.telemetry_seq, t.uptime_ms) for t in _telemetry(fw)]
    assert got == [(0, 59), (1, 69), (2, 79)]


def test_a_rate_change_restarts_the_count_and_uneven_rates_spread_evenly() -> None:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    fw.take_frames()
    fw.receive_now(encode(m.SetTelemetryRate(100), 1))  # after tick 60
    for _ in range(25):
        fw.step()
    assert [t.uptime_ms for t in _telemetry(fw)] == [70, 80]
    fw.receive_now(encode(m.SetTelemetryRate(300), 2))  # after tick 85
    for _ in range(10):
        fw.step()
    assert [t.uptime_ms for t in _telemetry(fw)] == [89, 92, 95]  # gaps 3, 3, then 4
    for _ in range(4):
        fw.step()
    assert [t.uptime_ms for t in _telemetry(fw)] == [99]


def test_an_event_goes_out_in_the_tick_of_its_cause_before_that_tick_s_telemetry() -> None:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    fw.receive_now(encode(m.SetTelemetryRate(1000), 1))  # a frame every tick
    fw.take_frames()
    fw.physics.set_overheating(True)  # found by the next tick's fault checks
    fw.step()
    timed = fw.take_timed_frames()
    assert len({t for t, _ in timed}) == 1  # all written in that one tick
    assert [decode_frame(raw).message.TYPE for _, raw in timed] == [
        MsgType.EVENT, MsgType.TELEMETRY]
