"""The physics model: motor lag, depth slew, counters, current and heat, gauge, determinism."""

from __future__ import annotations

import math

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.pen_model import calibration_error_from_seed, serial_from_seed
from simulators.testing import PenHost
from tests.simulators.helpers import make, state


def _run(host: PenHost, **kw) -> None:
    replies = host.start_needle(**kw)
    assert all(r.TYPE == 0x41 for r in replies), replies


def test_motor_speed_first_order_lag() -> None:
    sim, host = make()
    _run(host, speed_centihz=10000, duty_permille=1000, lease_ms=2000)
    sim.advance(0.020)  # one time constant
    assert sim.firmware.physics.speed_hz == pytest.approx(100 * (1 - math.exp(-1)), rel=0.03)
    sim.advance(0.2)
    assert sim.firmware.physics.speed_hz == pytest.approx(100, rel=0.01)
    host.request(m.NeedleStop())
    sim.advance(0.2)
    assert sim.firmware.physics.speed_hz < 1  # coasts down when not driven


def test_depth_actuator_slews_at_10_mm_per_s() -> None:
    sim, host = make()
    host.request(m.SetSetpoints(2000, 10000, 500, 100_000))  # stored: IDLE moves nothing
    sim.advance(0.1)
    assert sim.firmware.physics.position_um == 0
    host.request(m.Arm())  # the needle is out only in ARMED and RUNNING (protocol.md sec. 7)
    sim.advance(0.1)
    assert sim.firmware.physics.position_um == pytest.approx(1000)
    sim.advance(0.1)
    assert sim.firmware.physics.position_um == pytest.approx(2000)
    sim.advance(0.011)  # one more telemetry frame
    host.poll()
    assert host.telemetry[-1].depth_um == 2000 and host.telemetry[-1].depth_cmd_um == 2000


@pytest.mark.parametrize(("duty", "period_us"), [(1000, 100_000), (500, 100_000), (250, 40_000)])
def test_strokes_and_impressions_follow_speed_time_duty(duty: int, period_us: int) -> None:
    sim, host = make()
    _run(host, speed_centihz=12000, duty_permille=duty, period_us=period_us, lease_ms=2000)
    n_ms = 1999
    for _ in range(n_ms):
        sim.firmware.step()
    strokes = sim.firmware.physics.strokes
    assert strokes == pytest.approx(120 * n_ms / 1000 * duty / 1000, rel=0.03)
    assert sim.firmware.impressions == 1 + (n_ms * 1000) // period_us


def test_current_and_temperature_rise_with_speed_and_duty() -> None:
    def steady(speed: int, duty: int) -> tuple[float, float]:
        sim, host = make()
        _run(host, speed_centihz=speed, duty_permille=duty, lease_ms=2000)
        currents = []
        for _ in range(4):
            host.request(m.LeaseRenew(2000))
            sim.advance(1.5)
        for _ in range(100):
            sim.firmware.step()
            currents.append(sim.firmware.physics.current_a)
        return sum(currents) / len(currents), sim.firmware.physics.temp_c

    slow = steady(5000, 1000)
    fast = steady(17000, 1000)
    half = steady(17000, 500)
    assert fast[0] > slow[0] > 0.1 and fast[1] > slow[1] > 25.0
    assert half[0] < fast[0] and half[1] < fast[1]


def test_gauge_reads_true_protrusion_through_hidden_offset_and_gain() -> None:
    sim, host = make(seed=11)
    md = sim.model
    assert 0.2 <= md.offset_mm <= 0.5 and 0.9 <= md.gain <= 1.1
    host.request(m.SetSetpoints(2000, 10000, 500, 100_000))
    host.request(m.Arm())  # the needle is out only while armed (protocol.md sec. 7)
    sim.advance(0.3)
    true_mm = md.gain * 2.0 - md.offset_mm  # the gauge adds its bow and noise (test_realism)
    bound = abs(sim.gauge.error_mm(true_mm)) + 5 * md.gauge_noise_mm + 1e-4
    assert sim.gauge.read_mm() == pytest.approx(true_mm, abs=bound)
    host.request(m.Retract())
    sim.advance(0.3)
    assert sim.gauge.read_mm() == 0.0  # needle inside the cartridge
    # the command for a wanted true depth lies inside the actuator travel
    assert 0 < md.actuator_mm_for(1.5) * 1000 <= md.depth_max_um


def test_same_seed_same_pen_different_seed_different_pen() -> None:
    assert serial_from_seed(5) == serial_from_seed(5) != serial_from_seed(6)
    assert calibration_error_from_seed(5) == calibration_error_from_seed(5)
    assert calibration_error_from_seed(5) != calibration_error_from_seed(6)
    assert len(serial_from_seed(123456).encode("ascii")) == 12
    assert PenModel(seed=5).serial == serial_from_seed(5)


def _telemetry_bytes(seed: int) -> bytes:
    clock = VirtualClock()
    sim = PenSimulator(seed=seed, clock=clock, link_faults="drop=0.001,flip=0.001,junk=0.01")
    port = sim.open_port()
    host = PenHost(port)
    sim.advance(0.06)
    host.request(m.SetTelemetryRate(1000))
    host.start_needle(duty_permille=600, period_us=50_000, lease_ms=2000)
    out = bytearray(port.read(1 << 20, 0))
    for _ in range(5):
        sim.advance(0.3)
        out += port.read(1 << 20, 0)
    sim.close()
    return bytes(out)


def test_determinism_same_seed_identical_telemetry_bytes() -> None:
    a, b = _telemetry_bytes(3), _telemetry_bytes(3)
    assert len(a) > 39 * 1000 and a == b
    assert _telemetry_bytes(4) != a


def test_telemetry_at_1khz_is_sequence_numbered() -> None:
    sim, host = make()
    host.request(m.SetTelemetryRate(1000))
    sim.advance(0.5)
    host.poll()
    seqs = [t.telemetry_seq for t in host.telemetry]
    assert len(seqs) >= 500 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert state(sim) is S.IDLE
