"""`smp replay --into-sim` builds the simulator the session ran on, its fault spec included
(review 3, R08), and `--faults SPEC` replaces that spec."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
    short_profile,
)


@pytest.fixture
def jammed(data_dir, tmp_path):  # noqa: F811
    """`smp run` on `pensim://?faults=jam@1.5&clock=virtual`: the jam ends it (exit 4, left
    open). On virtual time the jam falls at the same point of the 3 s first pass in every
    run, however loaded the machine."""
    calibrate_default_pen(data_dir)
    ran = CliRunner().invoke(main, ["run", str(short_profile(tmp_path, "3.0")), "-t", "ana",
                                    "--screening", str(SCREENING),
                                    "--port", "pensim://?faults=jam@1.5&clock=virtual"])
    assert ran.exit_code == 4, ran.output


def test_into_sim_replays_the_recorded_fault_spec(jammed):
    replay = CliRunner().invoke(main, ["replay", "last", "--into-sim"])
    assert replay.exit_code == 0, replay.output
    assert "match" in replay.output


def test_faults_replaces_the_recorded_spec(jammed):
    replay = CliRunner().invoke(main, ["replay", "last", "--into-sim", "--faults", "jam@30"])
    assert replay.exit_code == 1, replay.output  # no jam where the pen jammed: a difference
    assert "FAULT_LATCHED" in replay.output


def test_a_bad_fault_spec_is_named(jammed):
    replay = CliRunner().invoke(main, ["replay", "last", "--into-sim", "--faults", "jam@x"])
    assert replay.exit_code != 0 and "Traceback" not in replay.output
    assert "--faults = 'jam@x'" in replay.output, replay.output


def test_faults_needs_into_sim(jammed):
    replay = CliRunner().invoke(main, ["replay", "last", "--faults", "jam@1"])
    assert replay.exit_code != 0 and "--into-sim" in replay.output, replay.output
