"""`smp calibrate --verify-only` that the pen cuts (a latched fault, a lost link) is a failed
check, as a cut calibration is (README: exit 1, "failed or aborted calibration (also a failed
`--verify-only`)"): one error line saying what to do first (`smp clear` / `smp info` for this
port) and the verify to run again; the stored calibration unchanged, the latch left for a
person to clear. Before: exit 2 with the controller's bare "the controller is fault". The pen
is the built-in simulator on virtual time; real SQLite."""

from __future__ import annotations

import shlex

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.outcomes import ExitCode
from tests.smpdevice.calibration.test_review11_clifix_calibration_exit import (  # noqa: F401
    sim_virtual_time,
    smp,
)

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


@pytest.mark.parametrize(("fault", "first"), [
    ("overtemperature@0.1", "smp clear --port {port}"),
    ("disconnect@0.2", "smp info --port {port}"),
])
def test_a_verification_the_pen_cuts_is_a_failed_check_with_what_to_do(tmp_path, fault, first):
    db = tmp_path / "cal.sqlite"
    assert smp("calibrate", "--port", "pensim://", "--auto", "--db", db).exit_code == 0
    (stored,) = CalibrationStore(db).list()
    port = f"pensim://?faults={fault}"
    result = smp("calibrate", "--verify-only", "--port", port, "--auto", "--db", db)
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "verification of pen SMP-" in errors[0] and "was cut by the pen" in errors[0]
    assert first.format(port=shlex.quote(port)) in errors[0], errors[0]
    again = f"smp calibrate --port {shlex.quote(port)} --auto --db {shlex.quote(str(db))}"
    assert errors[0].endswith(f"verify again: {again} --verify-only"), errors[0]
    assert CalibrationStore(db).list() == [stored]  # nothing saved, nothing changed
