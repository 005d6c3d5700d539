"""Review 16 (b16d).

A calibration run whose speed check is too short for the pen's telemetry rate (a service
`smp serve --telemetry-hz 1`, whose spins the controller refuses under 2 s) is refused only at
step 3, after the zero search and every depth point were read (a guided run: every gauge
reading the technician typed is lost). `smp calibrate --service ... --auto` at 1 Hz:
"Error: calibration.auto: duration_s must be at least 2 s, two telemetry frames at 1 Hz, to
measure a speed (got 1.0)", exit 2 - naming no option (`--spin-seconds`), after the depth steps.

Promised: smpdevice/calibration/report.py `_check_types`: every setting checked "before a run
starts: one met mid-run would leave the pen spinning or the gauge half read"; review 16:
calibration_spin refuses a duration under two telemetry frames."""

from __future__ import annotations

import pytest

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, check_spins
from smpdevice.calibration.workflow import run_calibration
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from tests.smpdevice.virtual_time import virtual_sim


class CountingGauge(SimulatorGauge):
    reads = 0

    def read_mm(self, request):
        CountingGauge.reads += 1
        return super().read_mm(request)


def test_a_spin_too_short_for_the_telemetry_is_refused_before_any_gauge_reading():
    CountingGauge.reads = 0
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, clock=sim.clock, telemetry_hz=1) as pen):
        gauge = CountingGauge(sim.url)
        try:
            report = run_calibration(pen, gauge, technician="qa",
                                     settings=CalibrationSettings(spin_duration_s=1.0))
        except InvalidArgument as exc:
            assert CountingGauge.reads == 0, (
                f"refused after {CountingGauge.reads} gauge readings: {exc}")
        else:
            pytest.fail(f"a 1 s spin at 1 Hz telemetry was run: {report.problems}")


@pytest.mark.parametrize("spin_s", [0.5, 1.0, 1.99, 4.2])
def test_the_refusal_names_the_option_and_the_rate(spin_s):
    CountingGauge.reads = 0
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, clock=sim.clock, telemetry_hz=1) as pen):
        with pytest.raises(InvalidArgument) as caught:
            run_calibration(pen, CountingGauge(sim.url), technician="qa",
                            settings=CalibrationSettings(spin_duration_s=spin_s))
        assert pen.state.value == "idle"  # never began calibrating
    message = str(caught.value)
    assert CountingGauge.reads == 0
    assert f"spin_seconds (--spin-seconds) {spin_s:g} " in message, message
    assert "at 1 Hz" in message and "at least 4.3 s" in message, message  # review 16 b16e


def test_spins_long_enough_for_the_rate_pass_the_check():
    settings = CalibrationSettings(spin_duration_s=4.3)
    check_spins(settings, [40.0, 120.0, 200.0], 1.0)  # spin-up + 4 frames at 1 Hz: allowed
    check_spins(CalibrationSettings(spin_duration_s=0.1), [40.0], None)  # rate unknown
    check_spins(CalibrationSettings(spin_duration_s=0.1, run_speed=False), [40.0], 1.0)
    with pytest.raises(InvalidArgument, match="0.5 s at 200 Hz"):
        check_spins(CalibrationSettings(spin_duration_s=0.5), [200.0], 1.0)
