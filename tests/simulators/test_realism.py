"""The realism models: gauge noise and bow, skin contact, speed ripple; all seeded."""

from __future__ import annotations

import statistics

import pytest

from firmware_protocol import messages as m
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.testing import PenHost

IDEAL = dict(gauge_noise_mm=0.0, gauge_nonlinearity_mm=0.0, skin_contact_sd_mm=0.0,
             speed_ripple_pct=0.0, speed_wander_pct=0.0)


def _pen(seed: int = 0, **model) -> tuple[PenSimulator, PenHost]:
    sim = PenSimulator(model=PenModel(seed=seed, **model), clock=VirtualClock())
    host = PenHost(sim.open_port())
    sim.advance(0.06)
    return sim, host


def _gauge_at(sim: PenSimulator, host: PenHost, actuator_um: int, reads: int = 1) -> list[float]:
    host.request(m.SetSetpoints(actuator_um, 10000, 500, 100_000))
    host.request(m.Arm())  # the needle is out only while armed (protocol.md sec. 7)
    sim.advance(0.3)
    return [sim.gauge.read_mm() for _ in range(reads)]


def _fit_residuals(points: list[tuple[float, float]]) -> list[float]:
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return [y - (my + slope * (x - mx)) for x, y in points]


def test_an_ideal_gauge_reads_the_true_protrusion_exactly() -> None:
    sim, host = _pen(seed=11, **IDEAL)
    md = sim.model
    assert _gauge_at(sim, host, 2000) == [round(md.gain * 2.0 - md.offset_mm, 4)]


def test_a_calibration_against_the_default_gauge_shows_real_residuals() -> None:
    sim, host = _pen(seed=4)
    points = [(a / 1000, _gauge_at(sim, host, a)[0]) for a in range(700, 2501, 300)]
    worst = max(abs(r) for r in _fit_residuals(points))
    assert 0.0002 <= worst <= 0.005  # was 0.0000 with a perfect gauge; still a good gauge


def test_gauge_noise_has_the_model_spread_around_the_bow() -> None:
    sim, host = _pen(seed=7, gauge_noise_mm=0.002, gauge_nonlinearity_mm=0.01)
    reads = _gauge_at(sim, host, 1500, reads=400)
    true_mm = sim.firmware.physics.true_depth_mm()
    assert statistics.stdev(reads) == pytest.approx(0.002, rel=0.2)
    assert statistics.fmean(reads) == pytest.approx(true_mm + sim.gauge.error_mm(true_mm),
                                                    abs=0.0005)
    assert 0.005 <= abs(sim.gauge.error_mm(1.5)) <= 0.01  # the bow peaks at mid-travel
    assert sim.gauge.error_mm(0.0) == 0.0


def test_inside_the_cartridge_the_gauge_reads_zero_whatever_its_noise() -> None:
    sim, host = _pen(gauge_noise_mm=0.01)
    assert set(_gauge_at(sim, host, 0, reads=50)) == {0.0}


def test_gauge_readings_are_deterministic_per_seed() -> None:
    def readings(seed: int) -> list[float]:
        sim, host = _pen(seed=seed, gauge_noise_mm=0.002, gauge_nonlinearity_mm=0.01)
        return _gauge_at(sim, host, 1200, reads=20)

    assert readings(3) == readings(3) != readings(5)


def _run(sim: PenSimulator, host: PenHost, duty: int = 1000, period_us: int = 20_000) -> None:
    host.request(m.SetTelemetryRate(1000))
    host.start_needle(depth_um=1500, speed_centihz=10000, duty_permille=duty,
                      period_us=period_us, lease_ms=2000)


def test_skin_depth_varies_impression_to_impression_but_not_in_telemetry() -> None:
    sim, host = _pen(seed=2, skin_contact_sd_mm=0.03)
    assert sim.skin_depth_mm() is None  # not running
    _run(sim, host)
    sim.advance(0.3)
    depths = []
    for i in range(300):
        if i % 50 == 0:
            host.request(m.LeaseRenew(2000))
        sim.advance(0.020)  # one impression each
        depths.append(sim.skin_depth_mm())
    protrusion = sim.firmware.physics.true_depth_mm()
    assert statistics.stdev(depths) == pytest.approx(0.03, rel=0.25)
    assert statistics.fmean(depths) == pytest.approx(protrusion, abs=0.01)
    host.poll()
    assert {t.depth_um for t in host.telemetry[-200:]} == {1500}  # the sensor sees the actuator
    again = sim.firmware.physics.skin_depth_mm(sim.firmware.impressions)
    assert again == depths[-1]  # a pure function of (seed, impression)


def test_motor_speed_ripples_and_wanders_yet_strokes_follow_speed_and_time() -> None:
    sim, host = _pen(seed=6, speed_ripple_pct=2.0, speed_wander_pct=0.5)
    _run(sim, host)
    sim.advance(0.2)
    host.poll()
    start_strokes, n_ms = sim.firmware.physics.stroke_acc, 1000
    sim.advance(n_ms / 1000)
    host.poll()
    speeds = [t.speed_centihz / 100 for t in host.telemetry[-900:]]
    assert 0.5 <= statistics.stdev(speeds) <= 5.0  # visibly rippling around ...
    assert statistics.fmean(speeds) == pytest.approx(100, rel=0.02)  # ... the set speed
    strokes = sim.firmware.physics.stroke_acc - start_strokes
    assert strokes == pytest.approx(100 * n_ms / 1000, rel=0.02)


def test_without_ripple_the_encoder_reads_the_lag_model_exactly() -> None:
    sim, host = _pen(**IDEAL)
    _run(sim, host)
    for _ in range(50):
        sim.advance(0.007)
        assert sim.firmware.physics.encoder_hz == sim.firmware.physics.speed_hz


def test_default_realism_is_deterministic_per_seed() -> None:
    def trace(seed: int) -> list[tuple[int, int, float]]:
        sim, host = _pen(seed=seed)
        _run(sim, host, duty=500, period_us=50_000)
        sim.advance(0.5)
        host.poll()
        return [(t.speed_centihz, t.strokes, sim.gauge.read_mm()) for t in host.telemetry[-50:]]

    assert trace(9) == trace(9) != trace(10)
