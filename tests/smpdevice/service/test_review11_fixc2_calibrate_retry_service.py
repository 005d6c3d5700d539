"""REV2B R6 through `smp serve`: a guided `smp calibrate --service URL` that fails prints the
command to run again with every settings option the run was given (--points, --valid-days,
--speed-tolerance-pct, --spin-seconds ...), not only the service, gauge and technician: copied
as printed, a retry saved a calibration valid 365 days where the clinic gave 30. Real service,
virtual-time pen; the technician is `LiveInput` reading the pen's gauge."""

from __future__ import annotations

import shlex

import pytest

from smpdevice.control import State

from .test_service_calibrate import LiveInput, smp


@pytest.fixture
def sim(vsim):
    return vsim


def test_a_failed_guided_calibration_through_the_service_says_how_to_run_it_again(service, sim):
    before = service.pen.calibration
    stdin = LiveInput([lambda: f"{sim.gauge.read_mm():.3f}"] * 40)
    result = smp(["calibrate", "--service", service.url, "-t", "Ana O'Brien", "--points", "4",
                  "--valid-days", "30", "--spin-seconds", "0.2", "--speed-tolerance-pct",
                  "0.1"], stdin)  # too tight for the speed check: it fails
    assert result.exit_code == 1, result.output
    assert "Result: FAIL; nothing was saved" in result.output
    line = result.output.split("run again: ", 1)[1].splitlines()[0]
    assert shlex.split(line) == [
        "smp", "calibrate", "--service", service.url, "-t", "Ana O'Brien", "--points", "4",
        "--speed-tolerance-pct", "0.1", "--valid-days", "30", "--spin-seconds", "0.2"], line
    assert service.pen.calibration is before  # nothing installed
    assert service.pen.state is State.IDLE
