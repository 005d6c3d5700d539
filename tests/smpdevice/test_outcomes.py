"""Session outcomes and exit codes: one table, never "done" for a session that is not."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from smpdevice.calibration.gauges import CalibrationAborted
from smpdevice.config import ConfigError
from smpdevice.errors import SmpError
from smpdevice.outcomes import (
    ExitCode,
    SessionOutcome,
    calibrate_command,
    classify_session,
    command,
    next_steps,
)
from smpdevice.passlog import PassLogError, PassOutcome
from smpdevice.sessions.profiles import ProfileError

ROOT = Path(__file__).resolve().parents[2]
PASS_OUTCOMES = [o.value for o in PassOutcome]


def test_exit_codes_are_distinct_and_the_documented_ones():
    codes = [c.value for c in ExitCode]
    assert len(set(codes)) == len(codes)
    assert ExitCode.USER_ERROR == 2 and ExitCode.INTERRUPTED == 130 and ExitCode.OK == 0
    failures = {ExitCode.FAULT, ExitCode.ESTOP, ExitCode.LINK_LOST, ExitCode.INTERRUPTED}
    assert len(failures) == 4 and ExitCode.OK not in failures
    # The errors defined elsewhere use the codes of this table.
    assert SmpError.exit_code == ExitCode.USER_ERROR
    assert PassLogError.exit_code == ExitCode.RECORD_ERROR
    assert ProfileError.exit_code == ExitCode.CHECK_FAILED
    assert CalibrationAborted.exit_code == ExitCode.CHECK_FAILED
    assert ConfigError.exit_code == ExitCode.CHECK_FAILED


def test_every_exit_code_is_documented_in_readme_and_integration_guide():
    for page in (ROOT / "README.md", ROOT / "docs" / "integration.md"):
        text = page.read_text()
        table = {int(m) for m in re.findall(r"^\|\s*`?(\d+)`?\s*\|", text, re.M)}
        assert {c.value for c in ExitCode} <= table, f"{page.name} must list every exit code"


def test_every_session_outcome_has_a_distinct_exit_code_and_only_completed_is_ok():
    codes = {o: o.exit_code for o in SessionOutcome}
    assert len(set(codes.values())) == len(codes)
    assert [o for o, c in codes.items() if c == ExitCode.OK] == [SessionOutcome.completed]


def test_classification_of_the_usual_endings():
    c = classify_session
    assert c(["completed"] * 4, 4) is SessionOutcome.completed
    assert c(["completed", "fault"], 4) is SessionOutcome.fault
    assert c(["completed", "estop"], 4) is SessionOutcome.estop
    assert c(["link_lost"], 4) is SessionOutcome.link_lost
    assert c(["completed", "stopped"], 4, stop_requested=True) is SessionOutcome.interrupted
    assert c(["completed", "stopped"], 4) is SessionOutcome.incomplete
    assert c(["log_error"], 2) is SessionOutcome.log_error
    # Fewer passes than planned, none failed: the pen's state says why, else incomplete.
    assert c(["completed"], 4, pen_state="fault") is SessionOutcome.fault
    assert c(["completed"], 4, pen_state="estop") is SessionOutcome.estop
    assert c(["completed"], 4, pen_state="disconnected") is SessionOutcome.link_lost
    assert c([], 4, pen_state="idle") is SessionOutcome.incomplete
    assert c([], 4, stop_requested=True) is SessionOutcome.interrupted


@given(st.lists(st.sampled_from([*PASS_OUTCOMES, "in_progress"]), max_size=8),
       st.integers(0, 8), st.booleans(),
       st.sampled_from([None, "idle", "armed", "fault", "estop", "disconnected"]))
def test_a_session_is_completed_exactly_when_every_planned_pass_completed(
        outcomes, planned, stop_requested, pen_state):
    result = classify_session(outcomes, planned, stop_requested=stop_requested,
                              pen_state=pen_state)
    every_pass_done = all(o == "completed" for o in outcomes) and len(outcomes) >= planned
    assert result.complete is every_pass_done
    assert (result.exit_code == ExitCode.OK) is every_pass_done


@given(st.text(min_size=1, max_size=60))
def test_commands_in_hints_survive_a_shell(port):
    line = calibrate_command(port)
    assert shlex.split(line)[:4] == ["smp", "calibrate", "--port", port]
    assert shlex.split(command("smp", "clear", "--port", port)) == ["smp", "clear", "--port", port]


def test_calibrate_hint_is_a_command_with_the_known_port():
    assert calibrate_command("pensim://") == "smp calibrate --port pensim:// --auto"
    assert calibrate_command("/dev/ttyACM0") == "smp calibrate --port /dev/ttyACM0"
    assert calibrate_command("pensim://?seed=3&faults=jam@2") == \
        "smp calibrate --port 'pensim://?seed=3&faults=jam@2' --auto"


def test_next_steps_name_real_commands_with_the_port():
    steps = next_steps(SessionOutcome.fault, port="/dev/ttyACM0", session_id="S1",
                       remaining_passes=2)
    text = "\n".join(steps)
    assert "smp clear --port /dev/ttyACM0" in text
    assert "2 planned pass(es) were not played" in text
    assert "smp sessions show S1" in text
    assert "smp clear" in "\n".join(next_steps(SessionOutcome.estop, port="p", session_id="S",
                                               remaining_passes=0))
    assert "smp info --port p" in "\n".join(next_steps(SessionOutcome.link_lost, port="p",
                                                       session_id="S", remaining_passes=1))


def test_every_command_a_hint_names_exists():
    """The commands in next steps and hints are real `smp` commands that accept their options."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    lines = [calibrate_command("pensim://"), calibrate_command("/dev/ttyACM0")]
    for outcome in SessionOutcome:
        lines += next_steps(outcome, port="/dev/ttyACM0", session_id="S1", remaining_passes=1)
    commands = {line[line.index("smp "):] for line in lines if "smp " in line}
    assert len(commands) >= 5
    for line in commands:
        words = shlex.split(line)[1:]
        path = [w for w in words if not w.startswith("-")][:2]
        group = main
        for word in path:
            if not hasattr(group, "commands") or word not in group.commands:
                break
            group = group.commands[word]
        assert group is not main, f"not an smp command: {line}"
        known = {o for p in group.params for o in getattr(p, "opts", [])}
        assert {w for w in words if w.startswith("--")} <= known, f"unknown option in: {line}"
        assert CliRunner().invoke(main, [*path, "--help"]).exit_code == 0
