"""REV2B R6: the command a failed calibration prints to run again carries every option of
`smp calibrate` the run was given that changes what is checked or saved (--points,
--tolerance-mm, --speed-tolerance-pct, --valid-days, --spin-seconds, --tachometer, with --db
and -t), quoted; options left to their defaults are not written. Before, it kept only the port,
--auto, --gauge, --db and -t: copied as printed, the retry saved a calibration valid 365 days
where the clinic gave 30, with 6 depth points where it gave 7. Simulator on virtual time."""

from __future__ import annotations

import shlex
from datetime import timedelta

import pytest
from click.testing import Result

from smpdevice.calibration.store import CalibrationStore
from tests.smpdevice.calibration.test_review11_clifix_calibration_exit import (  # noqa: F401
    sim_virtual_time,
    smp,
)

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


def again(result: Result) -> list[str]:
    """The words of the printed `run again:` command (the last such line)."""
    assert result.exit_code == 1, result.output
    line = [x for x in result.stderr.splitlines() if "run again: " in x][-1]
    return shlex.split(line.split("run again: ", 1)[1])


def test_the_retry_carries_every_option_given_and_saves_as_the_clinic_asked(tmp_path):
    cal = tmp_path / "dir with spaces" / "cal.sqlite"
    cal.parent.mkdir()
    failed = smp("calibrate", "--port", "pensim://", "--auto", "--db", cal, "-t", "Ana O'Brien",
                 "--valid-days", "30", "--points", "7", "--tolerance-mm", "0.05",
                 "--spin-seconds", "0.5", "--speed-tolerance-pct", "0.1")  # too tight: fails
    words = again(failed)
    assert words == ["smp", "calibrate", "--port", "pensim://", "--auto", "--db", str(cal),
                     "-t", "Ana O'Brien", "--points", "7", "--tolerance-mm", "0.05",
                     "--speed-tolerance-pct", "0.1", "--valid-days", "30", "--spin-seconds",
                     "0.5"], words
    assert CalibrationStore(cal).list() == []  # nothing saved
    # The technician fixes the cause the report names (the speed tolerance), nothing else:
    words[words.index("--speed-tolerance-pct") + 1] = "3"
    assert smp(*words[1:]).exit_code == 0
    (saved,) = CalibrationStore(cal).list()
    assert saved.expires_at - saved.created_at == timedelta(days=30)  # not 365
    assert len(saved.points) == 7  # not 6
    assert saved.technician == "Ana O'Brien"


def test_the_retry_writes_only_the_options_given():
    words = again(smp("calibrate", "--port", "pensim://", "--auto", "--speed-tolerance-pct",
                      "0.1"))
    assert words == ["smp", "calibrate", "--port", "pensim://", "--auto",
                     "--speed-tolerance-pct", "0.1"], words


def test_a_given_default_value_and_the_tachometer_flag_are_carried_too():
    """Given on the command line, even at the default value: the clinic's choice is written
    out, so a later change of the built-in default never changes what the retry saves."""
    words = again(smp("calibrate", "--port", "pensim://", "--auto", "--valid-days", "365",
                      "--tachometer", "--speed-tolerance-pct", "0.1"))
    assert words[words.index("--valid-days") + 1] == "365"
    assert "--tachometer" in words


def test_a_failed_verification_says_how_to_recalibrate_with_the_options_given(tmp_path):
    db = tmp_path / "cal.sqlite"
    refused = smp("calibrate", "--verify-only", "--port", "pensim://", "--auto", "--db", db,
                  "--valid-days", "30")
    assert refused.exit_code == 2, refused.output  # no calibration to verify
    line = refused.stderr.split("Calibrate it first: ", 1)[1].splitlines()[0]
    words = shlex.split(line)
    assert "--verify-only" not in words  # the command recalibrates
    assert words[words.index("--valid-days") + 1] == "30", words
