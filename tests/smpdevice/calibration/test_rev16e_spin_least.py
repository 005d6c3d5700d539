"""Review 16 (b16e): `check_spins` let through spins that step 3 then refused ("cannot count
punctures from 1 telemetry frames"), after every gauge reading: it asked for two telemetry
frames, while count_punctures skips the spin-up and then needs three. Its refusal advised
"--spin-seconds 2 or more" at 1 Hz, itself failing. Promised: docs/technicians.md step 3,
"refused before step 1 (exit 2, naming `--spin-seconds`, the rate and the least that works),
never after your gauge readings"."""

from __future__ import annotations

import re

import pytest

from smpdevice.calibration.accuracy import count_punctures
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, check_spins, least_spin_s
from smpdevice.calibration.workflow import run_calibration
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.errors import SmpError
from tests.smpdevice.virtual_time import virtual_sim


class CountingGauge(SimulatorGauge):
    reads = 0

    def read_mm(self, request):
        CountingGauge.reads += 1
        return super().read_mm(request)


@pytest.mark.parametrize(("telemetry_hz", "spin_s"),
                         [(1, 2.0), (1, 3.0), (10, 0.2), (10, 0.3), (2, 2.0)])
def test_a_spin_the_check_lets_through_is_never_refused_after_the_gauge(telemetry_hz, spin_s):
    CountingGauge.reads = 0
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, clock=sim.clock, telemetry_hz=telemetry_hz) as pen):
        try:
            run_calibration(pen, CountingGauge(sim.url), technician="qa",
                            settings=CalibrationSettings(spin_duration_s=spin_s))
        except InvalidArgument:
            assert CountingGauge.reads == 0  # refused before step 1: as promised
        except SmpError as exc:
            pytest.fail(f"--spin-seconds {spin_s:g} at {telemetry_hz} Hz passed the check, then "
                        f"failed after {CountingGauge.reads} gauge readings: {exc}")


@pytest.mark.parametrize("telemetry_hz", [1, 10])
def test_the_least_the_refusal_advises_runs_the_speed_check(telemetry_hz):
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, clock=sim.clock, telemetry_hz=telemetry_hz) as pen):
        with pytest.raises(InvalidArgument) as caught:
            run_calibration(pen, CountingGauge(sim.url), technician="qa",
                            settings=CalibrationSettings(spin_duration_s=0.1))
        advised = re.search(r"Give --spin-seconds ([0-9.]+) or more", str(caught.value))
        assert advised is not None, caught.value
        report = run_calibration(pen, CountingGauge(sim.url), technician="qa",
                                 settings=CalibrationSettings(
                                     spin_duration_s=float(advised.group(1))))
    assert report.speed is not None and report.puncture_rate is not None, report.problems


@pytest.mark.parametrize("telemetry_hz", [1, 2, 3, 5, 7, 10, 20, 33, 50, 100, 200])
def test_every_spin_the_check_allows_has_frames_enough_at_any_phase(telemetry_hz):
    """Beyond the simulator: frames at any phase of their period, at any rate."""
    least_s = least_spin_s(telemetry_hz)
    FAST_HZ = 1e6  # a speed whose spin count_window_s never lengthens
    check_spins(CalibrationSettings(spin_duration_s=least_s), [FAST_HZ], telemetry_hz)
    shorter_s = round(least_s - 0.1, 6)
    if shorter_s > 0:
        with pytest.raises(InvalidArgument, match=f"--spin-seconds {least_s:g} or more"):
            check_spins(CalibrationSettings(spin_duration_s=shorter_s), [FAST_HZ], telemetry_hz)
    period_ms = 1000 / telemetry_hz
    for phase in range(10):  # the first running frame 0 .. 0.9 periods after the start
        first_ms = phase * period_ms / 10
        frames, k = [], 0
        while first_ms + k * period_ms <= least_s * 1000:
            at_ms = int(first_ms + k * period_ms)
            frames.append((at_ms, at_ms // 10, True))  # 100 strokes per second
            k += 1
        count_punctures(100.0, least_s, frames)  # raises with fewer than 3 counted frames
