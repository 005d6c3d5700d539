"""Review 11 (reva F1): a calibration that ran and failed its check exits 1, as README's exit
table says ("1: a check failed: ... failed or aborted calibration"), like an aborted one; a
`--verify-only` that measured the pen off its stored calibration exits 1 too. 2 stays for what
the user must change before a check can run (here: a pen with no calibration to verify).
Before: a failed calibration or verification exited 2 ("a bad option, file, port or pen state").
The pen is the built-in simulator on virtual time."""

from __future__ import annotations

import pytest
from click.testing import CliRunner, Result

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.outcomes import ExitCode
from tests.smpdevice.conftest import fit_points

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


@pytest.fixture
def sim_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")


def smp(*args: object) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def test_a_failed_calibration_exits_1_and_saves_nothing(tmp_path):
    db = tmp_path / "cal.sqlite"
    result = smp("calibrate", "--port", "pensim://", "--auto", "--db", db,
                 "--speed-tolerance-pct", "0.1")  # too tight to count: the speed check fails
    assert "Result: FAIL; nothing was saved" in result.stdout
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert result.stderr.startswith("error: calibration of pen SMP-")
    assert CalibrationStore(db).list() == []


def test_a_failed_verification_exits_1(tmp_path):
    db = tmp_path / "cal.sqlite"
    assert smp("calibrate", "--port", "pensim://", "--auto", "--db", db).exit_code == 0
    store = CalibrationStore(db)
    (good,) = store.list()
    store.save(Calibration.linear(pen_serial=good.pen_serial, technician="ana",
                                  offset_mm=good.offset_mm + 0.3, gain=good.gain,
                                  simulated=True,  # 0.3 mm off the pen's true zero
                                  **fit_points(good.offset_mm + 0.3, good.gain)))
    result = smp("calibrate", "--verify-only", "--port", "pensim://", "--auto", "--db", db)
    assert "verify: FAIL" in result.stdout, result.output
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    assert "failed verification" in result.stderr


def test_verifying_a_pen_with_no_calibration_stays_a_user_error(tmp_path):
    result = smp("calibrate", "--verify-only", "--port", "pensim://", "--auto", "--db",
                 tmp_path / "cal.sqlite")
    assert result.exit_code == ExitCode.USER_ERROR, result.output
    assert "has no calibration. Calibrate it first: smp calibrate --port pensim:// --auto " \
           "--db " in result.stderr
