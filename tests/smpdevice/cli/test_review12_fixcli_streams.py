"""The `smp` process's own streams (review 12, REVG-1, -4, -12, -13): stdin, stdout or stderr
closed at start, stderr on a full disk, a terminal that cannot show every character. README
"Errors a user can cause ... print one line" and "When a command's output cannot be written
... the command still runs to its end ..., then says so in one line on stderr and exits with
its own non-zero code, or 2 if it would have exited 0". Real `smp` processes, real pens of the
built-in simulator on virtual time; the steps before and beside them whose streams are not the
point (a session to export, the UTF-8 answer to compare with) run `smp` in this process
(tests/smpdevice/shell.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.passlog import PassLog
from tests.smpdevice import shell
from tests.smpdevice.cli.test_cli_run import SCREENING, calibrate_default_pen, short_profile

ENV = {"SMP_SIM_CLOCK": "virtual", "SMP_LOG_LEVEL": "warning", "SMP_LOG_FORMAT": "text"}
ASCII_TERMINAL = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": "ascii"}


def smp(args: list[str], data: Path, *, close: int | None = None, env: dict | None = None,
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    """`smp ARGS` as a real process; `close`: the descriptor (0, 1, 2) closed before it
    starts, as `<&-`, `>&-` or `2>&-` do."""
    whole = {**os.environ, **ENV, "SMP_DATA_DIR": str(data), **(env or {})}
    return subprocess.run([sys.executable, "-m", "smpdevice", *args], env=whole,
                          stdin=None if close == 0 else stdin,
                          stdout=None if close == 1 else subprocess.PIPE,
                          stderr=None if close == 2 else stderr, text=True, timeout=120,
                          preexec_fn=None if close is None else (lambda: os.close(close)))


def smp_here(args: list[str], data: Path, *, env: dict | None = None):
    """`smp ARGS` in this process, with the environment `smp` gives its process."""
    whole = {**os.environ, **ENV, "SMP_DATA_DIR": str(data), **(env or {})}
    return shell.smp(args, env=whole, input="")


def run_args(tmp_path: Path) -> list[str]:
    return ["run", str(short_profile(tmp_path)), "-t", "ana", "--screening", str(SCREENING),
            "--port", "pensim://"]


def errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr[-2000:]
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def detail_log_is_whole(data: Path) -> None:
    """No output landed in the detail log (a file opened on the freed descriptor would)."""
    for line in (data / "smp.log").read_text().splitlines():
        json.loads(line)


@pytest.mark.parametrize("command", [["config", "show"], ["protocol", "vectors"], ["--help"],
                                     ["info", "--port", "pensim://"]])
def test_stdout_closed_at_start_is_one_line_and_exit_2(tmp_path, command):
    done = smp(command, tmp_path, close=1)
    (line,) = errors(done.stderr)
    assert "standard output is closed" in line and "what it printed is lost" in line, line
    assert done.returncode == 2, (done.returncode, done.stderr)


def test_run_with_stdout_closed_plays_records_and_exits_2(tmp_path):
    calibrate_default_pen(tmp_path)
    done = smp(run_args(tmp_path), tmp_path, close=1)
    (line,) = errors(done.stderr)
    assert "standard output is closed" in line, line
    assert done.returncode == 2, done.stderr
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.summary["outcome"] == "completed" and log.passes()
    detail_log_is_whole(tmp_path)


def test_stdout_closed_with_nothing_to_print_is_not_a_loss(tmp_path):
    """`sessions export -o FILE` writes its file, not stdout: nothing was lost, its own exit."""
    calibrate_default_pen(tmp_path)
    assert smp_here(run_args(tmp_path), tmp_path).returncode == 0
    out = tmp_path / "export.csv"
    done = smp(["sessions", "export", "--format", "csv", "-o", str(out)], tmp_path, close=1)
    assert errors(done.stderr) == [] and done.returncode == 0, done.stderr
    assert out.read_text().count("\n") >= 3


def test_guided_calibrate_with_stdin_closed_says_why_and_saves_nothing(tmp_path):
    for stdin in ("closed", subprocess.DEVNULL):
        done = smp(["calibrate", "--port", "pensim://", "-t", "ana"], tmp_path,
                   close=0 if stdin == "closed" else None, stdin=stdin)
        (line,) = errors(done.stderr)
        assert "standard input ended" in line and "nothing was saved" in line, line
        assert "--gauge" in line, line
        assert done.returncode == 1, done.stderr  # README: a failed or aborted calibration
    store = tmp_path / "calibrations.sqlite"
    assert not store.exists() or CalibrationStore(store).list() == []


@pytest.mark.parametrize("stdin", ["closed", "devnull"])
def test_a_question_without_input_is_one_clear_line(tmp_path, stdin):
    """`smp calibrate` asks the technician's name when none is set: no answer can come."""
    done = smp(["calibrate", "--port", "pensim://"], tmp_path,
               close=0 if stdin == "closed" else None)
    (line,) = errors(done.stderr)
    assert "a question got no answer (standard input ended)" in line, line
    assert "Aborted!" not in done.stderr and done.returncode == 1, done.stderr


def test_run_with_stderr_closed_plays_and_exits_0(tmp_path):
    calibrate_default_pen(tmp_path)
    done = smp(run_args(tmp_path), tmp_path, close=2, env={"SMP_LOG_LEVEL": "info"})
    assert done.returncode == 0 and "Session S" in done.stdout
    with PassLog(tmp_path / "passlog.sqlite", readonly=True) as log:
        assert log.sessions()[0].summary["outcome"] == "completed"
    detail_log_is_whole(tmp_path)


def test_log_level_info_with_stderr_on_a_full_disk_still_plays(tmp_path):
    """The `starting` line, said before the command line takes over, is only a sign of life."""
    calibrate_default_pen(tmp_path)
    with open("/dev/full", "w") as full:
        done = smp(run_args(tmp_path), tmp_path, stderr=full, env={"SMP_LOG_LEVEL": "info"})
    assert done.returncode == 0 and "Session S" in done.stdout
    assert (tmp_path / "passlog.sqlite").exists()


def test_run_on_an_ascii_terminal_shows_its_own_text_in_ascii_and_exits_0(tmp_path):
    calibrate_default_pen(tmp_path)
    done = smp(run_args(tmp_path), tmp_path, env=ASCII_TERMINAL)
    assert errors(done.stderr) == [] and done.returncode == 0, done.stderr
    assert "  -  see it with:" in done.stdout  # the em dash, in ASCII


def test_a_name_an_ascii_terminal_cannot_show_is_lost_output_said_in_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('technician = "Zoë"\n', encoding="utf-8")
    calibrate_default_pen(tmp_path)
    named = {"SMP_CONFIG": str(config)}
    no_t = [a for a in run_args(tmp_path) if a not in ("-t", "ana")]
    assert smp_here(no_t, tmp_path, env=named).returncode == 0
    for args in (["sessions", "list"], ["sessions", "export", "--format", "csv", "--identified"]):
        done = smp(args, tmp_path, env={**named, **ASCII_TERMINAL})
        (line,) = errors(done.stderr)
        assert "cannot be shown in this terminal's encoding (ascii)" in line, line
        assert "UTF-8" in line and done.returncode == 2, (args, done.stderr)
        assert "Zo?" in done.stdout
        utf8 = smp_here(args, tmp_path, env=named)
        assert utf8.returncode == 0 and "Zoë" in utf8.stdout, utf8.stderr
