"""Run a command line a reader is shown, as the shell would, with `smp` itself in-process.

Starting a Python process per command (~1 s of imports on a loaded machine, times ~100 commands
in the docs and help pages) was most of what the doc tests cost, so `smp` runs through click's
CliRunner here. The shell's own parts are kept: `NAME=value` before `smp` sets the
environment, `> FILE` writes stdout to FILE, `| FILTER ...` (jq) runs FILTER, a real program,
on smp's stdout, with the pipeline's status (`pipefail`), and a `# comment` is dropped. An
`smp` line whose only other shell part is a `$(...)` has its words expanded by bash, then runs
in-process. A line in any other shell form (another program, `$VAR`) runs in bash, as before.
The entry point itself (`smpdevice.entry:main`, Ctrl-C before the imports) keeps real-process
tests: tests/smpdevice/cli/test_cli_run.py's Ctrl-C tests (`python -m smpdevice`), and the `smp
sim` and `smp serve` processes of test_help_examples.py.

An in-process `smp`, and a line run in bash, run their built-in simulated pens on virtual time
(SMP_SIM_CLOCK=virtual, docs/simulator.md) unless the line or the environment says otherwise: a
session plays as fast as this computer computes it, with the same figures. The pens of `smp sim`
and `smp serve` processes stay on wall time (`smp sim` never reads the setting; the `smp serve`
of test_help_examples.py is started apart, with its own environment).

Being in-process, an `smp` that hangs cannot be killed: after HANG_S the whole process is ended
with every thread's stack on stderr (faulthandler), which fails the test instead of hanging the
suite.

`smp(args, env=...)` is the same in-process `smp` for tests that would otherwise start `python -m
smpdevice` for a step where the process is not the point (a set-up run, `sessions show`
afterwards): it takes the whole environment a process would get and answers as
`subprocess.run` does. `calibrated(...)` gives a data directory holding what `smp calibrate
--auto` saves, calibrated once per test process and copied. Keep real processes where the
process IS the point: signals, closed or full descriptors, terminal encodings, start-up.
"""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from click.testing import CliRunner

WAIT_S = 120.0
HANG_S = 300.0  # an in-process smp still running after this long hangs: end the process
SIM_CLOCK = ("SMP_SIM_CLOCK", "virtual")  # see the module's docstring
_EXPANSION = re.compile(r"[$`\\]")  # expands even inside double quotes: bash's job
_GLOB = re.compile(r"[*?~{}\[\]]")  # outside quotes: bash's job
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SUBSTITUTION = re.compile(r"\$\([^()`$\\]*\)")  # `$(...)`, nothing nested
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")


def split(command: str) -> tuple[dict[str, str], list[str], str | None, list[str]] | None:
    """(environment, smp arguments, stdout file, filter argv), or None: not a plain smp line."""
    if _EXPANSION.search(command) or _GLOB.search(_QUOTED.sub("", command.split(" #", 1)[0])):
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: let bash say so
        return None
    env: dict[str, str] = {}
    while words and _ASSIGNMENT.fullmatch(words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    filter_args: list[str] = []
    if words.count("|") == 1:
        at = words.index("|")
        words, filter_args = words[:at], words[at + 1:]
    redirect = None
    if words.count(">") == 1 and words.index(">") == len(words) - 2:
        redirect, words = words[-1], words[:-2]
    plain = words[:1] == ["smp"] and not {"|", ">", ">>", "<", "&", ";", "(", ")"} & {
        *words, *filter_args}
    return (env, words[1:], redirect, filter_args) if plain and filter_args[:1] != [""] else None


def expanded(command: str, cwd: Path, env: Mapping[str, str]) -> list[str] | None:
    """The words of a plain `smp` line whose only shell part is `$(...)` (`--out
    "$(mktemp -d)/x"`), as bash expands them: the substitutions run in bash, `smp` can then
    run in-process. None: any other form, or bash failed (the line then runs in bash)."""
    plain = _SUBSTITUTION.sub("x", command)
    parts = split(plain) if plain != command else None
    if parts is None or parts[0] or parts[2] is not None or parts[3]:
        return None
    done = subprocess.run(["bash", "-c", f"set -- {command}\nprintf '%s\\0' \"$@\""], cwd=cwd,
                          env=dict(env), capture_output=True, text=True, timeout=WAIT_S,
                          stdin=subprocess.DEVNULL)
    words = done.stdout.split("\0")[:-1]
    return words if done.returncode == 0 and words[:1] == ["smp"] else None


def run(command: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `command` in `cwd` with `env` (the whole environment for bash; for an in-process
    smp, the variables to set around it). Returns (status, stdout, stderr)."""
    parts = split(command)
    whole = dict(env if env is not None else os.environ)
    whole.setdefault(*SIM_CLOCK)
    if parts is None:
        words = expanded(command, cwd, whole)
        parts = None if words is None else ({}, words[1:], None, [])
    if parts is None:  # its own pens on virtual time too (a program of examples/, say)
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=whole,
                              capture_output=True, text=True, timeout=WAIT_S,
                              stdin=subprocess.DEVNULL)
        return done.returncode, done.stdout, done.stderr
    from smpdevice.cli import main

    prefix, args, redirect, filter_args = parts
    overrides = {k: v for k, v in (env or {}).items() if os.environ.get(k) != v}
    if SIM_CLOCK[0] not in (env or os.environ):
        overrides[SIM_CLOCK[0]] = SIM_CLOCK[1]
    with contextlib.chdir(cwd), hang_guard():
        result = CliRunner().invoke(main, args, env={**overrides, **prefix},
                                    terminal_width=int((env or os.environ).get("COLUMNS", 80)))
    status, out, err = result.exit_code, result.stdout, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "".join(traceback.format_exception(result.exception))
    if redirect is not None:
        (cwd / redirect).write_text(out)
        out = ""
    if filter_args:
        filtered = subprocess.run(filter_args, input=out, cwd=cwd, capture_output=True,
                                  text=True, timeout=WAIT_S)
        status = status or filtered.returncode
        out, err = filtered.stdout, err + filtered.stderr
    return status, out, err


@contextlib.contextmanager
def hang_guard(after_s: float = HANG_S):
    """Within: if still running after `after_s` of wall time, print every thread's stack and
    end the process (an in-process command cannot be killed alone)."""
    faulthandler.dump_traceback_later(after_s, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def smp(args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
        input: str | None = None) -> subprocess.CompletedProcess:
    """`smp ARGS` in this process, as `subprocess.run([python, -m, smpdevice, *ARGS], env=env,
    cwd=cwd, input=input, capture_output=True, text=True)` would answer: `env` is the whole
    environment (variables of this process it leaves out are unset around the command), stdin
    holds `input` and then ends. An exception the command line did not handle is appended to
    stderr as its traceback, as a process would print it."""
    from smpdevice.cli import main

    whole = dict(os.environ if env is None else env)
    overrides: dict[str, str | None] = {k: v for k, v in whole.items() if os.environ.get(k) != v}
    overrides.update({k: None for k in os.environ if k not in whole})
    with contextlib.chdir(cwd or Path.cwd()), hang_guard():
        result = CliRunner().invoke(main, list(args), input=input, env=overrides,
                                    terminal_width=int(whole.get("COLUMNS", 80)))
    err = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        err += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["smp", *args], result.exit_code, result.stdout, err)


_CALIBRATED: dict[str, Path] = {}  # port -> a data directory `smp calibrate --auto` filled


def calibrated(data_dir: Path, port: str = "pensim://?clock=virtual") -> Path:
    """Make `data_dir` (absent) a copy of a data directory in which `smp calibrate --port PORT
    --auto` saved its calibration: the same pen (seed, clock) calibrates to the same figures,
    so the command runs once per test process, in-process, and each test gets its own copy."""
    if port not in _CALIBRATED:
        made = Path(tempfile.mkdtemp(prefix="smp-calibrated-"))
        atexit.register(shutil.rmtree, made, True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
        env.update(SMP_DATA_DIR=str(made / "data"), SMP_KEY_DIR=str(made / "keys"),
                   SMP_CONFIG=str(made / "none.toml"), SMP_LOG_LEVEL="error")
        done = smp(["calibrate", "--port", port, "--auto"], env=env, cwd=made, input="")
        assert done.returncode == 0, done.stdout + done.stderr
        _CALIBRATED[port] = made / "data"
    shutil.copytree(_CALIBRATED[port], data_dir)
    return data_dir


def wall_clock_past_opening(passlog: Path, session_id: str, within_s: float = 10.0) -> None:
    """Wait until the wall clock is past the recorded opening of `session_id`. A session on a
    virtual clock stamps its records with the wall time its controller took the clock plus the
    clock's time since (control/sim_time.py), which can be some ms ahead of the wall clock; a
    `smp run --resume` right after it, in-process, would see its session opened in the future,
    take the clock as gone backwards and ask the screening again (sessions/resume.py
    `screening_due`). A process's start-up used to cover that."""
    from datetime import UTC, datetime

    from smpdevice.passlog import PassLog

    with PassLog(passlog, readonly=True) as log:
        opened = datetime.fromisoformat(log.session(session_id).opened_at)
    deadline = time.monotonic() + within_s
    while datetime.now(UTC) <= opened:
        assert time.monotonic() < deadline, f"session {session_id} opened at {opened}, ahead"
        time.sleep(0.005)
