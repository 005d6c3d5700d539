"""Review 11 (reva F6, F14, F10): what `smp` prints and how it exits, for a user.

F6: a command the CLI prints for the user to copy runs as printed: `smp run`'s resume and close
commands carry the run's `-t` and its own files (`--db`, `--calibrations`); `sessions show`
reads the run's `--db`; a failed calibration's "run again" carries its `--db` and `-t`.
Before: the resume dropped `-t` ("who treats?", exit 2) and `--db` (no such session).
F14: `smp monitor --duration S` that never reached its pen says why in one line, exit 2 (was 0).
F10: `smp profile schema --indent` is bounded like every other int option (was a traceback, or
gigabytes of spaces).
The pens are the built-in simulator on virtual time; the station has no technician set."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.outcomes import ExitCode
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
PROFILE = str(ROOT / "examples" / "session1_base_density.yaml")
SCREENING = str(ROOT / "examples" / "screening_clear.yaml")

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


def smp(*args: str) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


def printed(output: str, marker: str) -> list[str]:
    """The words of the first printed command after `marker` (`smp` left off)."""
    line = next(line for line in output.splitlines() if marker in line)
    words = shlex.split(line[line.index(marker) + len(marker):])
    assert words[0] == "smp", line
    return words[1:]


def test_the_resume_close_and_show_commands_run_as_printed(tmp_path):
    db, cal = tmp_path / "my log.sqlite", tmp_path / "cal.sqlite"
    assert smp("calibrate", "--port", "pensim://", "--auto", "--db", cal).exit_code == 0
    first = smp("run", PROFILE, "--port", "pensim://?faults=jam@4-5", "-t", "Ana M",
                "--screening", SCREENING, "--db", db, "--calibrations", cal)
    assert first.exit_code == ExitCode.FAULT, first.output
    again = printed(first.stdout, "Then play what is left (only the passes not completed): ")
    assert again[again.index("-t") + 1] == "Ana M"
    sid = first.stdout.split("Session ", 1)[1].split(":", 1)[0]
    shell.wall_clock_past_opening(db, sid)  # virtual time stamps it ahead (docs/simulator.md)
    resumed = smp(*again)  # as printed: no screening asked (it is not due), no -t added
    assert "Resuming session S" in resumed.stdout, resumed.output
    close = printed(resumed.stdout, "close it as it stands (prints the aftercare sheet): ")
    closed = smp(*close)
    assert "it is now closed" in closed.stdout, closed.output
    show = printed(first.stdout, "What was done is recorded: ")
    shown = smp(*show)
    assert shown.exit_code == 0, shown.output
    assert "closed" in shown.stdout


def test_the_pedal_pause_line_carries_the_technician(monkeypatch):
    monkeypatch.setenv("SMP_FOOTSWITCH", "required")
    assert smp("calibrate", "--port", "pensim://", "--auto").exit_code == 0
    ran = smp("run", PROFILE, "-t", "ana", "--screening", SCREENING, "--port",
              "pensim://?faults=pedal_up@0-100")
    assert "PAUSED on the footswitch" in ran.stdout, ran.output
    words = printed(ran.stdout, "play only what is left: ")
    assert words[words.index("-t") + 1] == "ana"
    assert "who treats" not in smp(*words, "--port", "pensim://").output


def test_a_failed_calibration_says_how_to_run_it_again_as_it_was_given(tmp_path):
    cal = tmp_path / "cal.sqlite"
    failed = smp("calibrate", "--port", "pensim://", "--auto", "--db", cal, "-t", "Ana M",
                 "--speed-tolerance-pct", "0.1")
    assert "Result: FAIL; nothing was saved" in failed.stdout, failed.output
    again = printed(failed.stderr, "Fix the cause above and run again: ")
    # every option the run was given, the failing one too: change only what the report names
    assert again[:8] == ["calibrate", "--port", "pensim://", "--auto", "--db", str(cal), "-t",
                         "Ana M"]
    tolerance = again.index("--speed-tolerance-pct")
    assert again[tolerance + 1] == "0.1"
    again[tolerance + 1] = "3"
    assert smp(*again).exit_code == 0
    saved = CalibrationStore(cal).list()
    assert [c.technician for c in saved] == ["Ana M"]  # in the database the run was given


def test_a_timed_monitor_that_never_reached_its_pen_exits_2_saying_why():
    result = smp("monitor", "--port", "/dev/nonexistent-clifix", "--duration", "0.2")
    assert result.exit_code == ExitCode.USER_ERROR, result.stdout[-300:]
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the monitor never reached the pen on "
                           "/dev/nonexistent-clifix: "), line


def test_a_timed_monitor_that_watched_its_pen_exits_0():
    result = smp("monitor", "--port", "pensim://", "--duration", "0.2")
    assert result.exit_code == 0, result.output
    assert "SMP-" in result.stdout


# (not 100000000: on a regressed build it builds gigabytes of spaces before failing)
@pytest.mark.parametrize("indent", ["99999999999999999999999", "17", "-1", "1e23"])
def test_schema_indent_out_of_range_is_a_usage_error(indent):
    result = smp("profile", "schema", "--indent", indent)
    assert result.exit_code == ExitCode.USER_ERROR, result.output
    assert "Invalid value for '--indent'" in result.stderr
    assert result.stdout == ""


def test_schema_indent_in_range_prints_the_schema():
    result = smp("profile", "schema", "--indent", "16")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1].startswith(" " * 16 + '"')


def test_two_chairs_the_own_log_notice_is_the_line_after_the_envelope_line():
    """F8 (docs): README says `smp run` prints `checked against ...` as its first line;
    integration.md ("Two chairs") now says the own-log notice comes on the line after it."""
    from smpdevice.passlog import PassLog

    assert smp("calibrate", "--port", "pensim://", "--auto").exit_code == 0
    with PassLog.open():  # the other chair holds the station's log
        ran = smp("run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING)
    assert ran.exit_code == 0, ran.output
    first, second = ran.stdout.splitlines()[:2]
    assert first.startswith("checked against "), first
    assert second.startswith("The station's pass log is in use by another run"), second
    assert "passlog-SMP-" in second
