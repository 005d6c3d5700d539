"""Run a command line a reader is shown, as the shell would, with `smp` itself in-process.

Starting a Python process per command (~1 s of imports on a loaded machine, times ~100 commands
in the docs and help pages) was most of what the doc tests cost, so `smp` runs through click's
CliRunner here. The shell's own parts are kept: `NAME=value` before `smp` sets the
environment, `> FILE` writes stdout to FILE, `| FILTER ...` (jq) runs FILTER, a real program,
on smp's stdout, with the pipeline's status (`pipefail`), and a `# comment` is dropped. A line
in any other shell form (another program, `$(...)`) runs in bash, as before. The entry point
itself (`smpdevice.entry:main`, Ctrl-C before the imports) keeps real-process tests:
tests/smpdevice/cli/test_cli_run.py's Ctrl-C tests (`python -m smpdevice`), and the `smp sim` and
`smp serve` processes of test_help_examples.py.

An in-process `smp`, and a line run in bash, run their built-in simulated pens on virtual time
(SMP_SIM_CLOCK=virtual, docs/simulator.md) unless the line or the environment says otherwise: a
session plays as fast as this computer computes it, with the same figures. The pens of `smp sim`
and `smp serve` processes stay on wall time (`smp sim` never reads the setting; the `smp serve`
of test_help_examples.py is started apart, with its own environment).

Being in-process, an `smp` that hangs cannot be killed: after HANG_S the whole process is ended
with every thread's stack on stderr (faulthandler), which fails the test instead of hanging the
suite.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import re
import shlex
import subprocess
import traceback
from pathlib import Path

from click.testing import CliRunner

WAIT_S = 120.0
HANG_S = 300.0  # an in-process smp still running after this long hangs: end the process
SIM_CLOCK = ("SMP_SIM_CLOCK", "virtual")  # see the module's docstring
_EXPANSION = re.compile(r"[$`\\]")  # expands even inside double quotes: bash's job
_GLOB = re.compile(r"[*?~{}\[\]]")  # outside quotes: bash's job
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
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


def run(command: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `command` in `cwd` with `env` (the whole environment for bash; for an in-process
    smp, the variables to set around it). Returns (status, stdout, stderr)."""
    parts = split(command)
    if parts is None:  # its own pens on virtual time too (a program of examples/, say)
        whole = dict(env if env is not None else os.environ)
        whole.setdefault(*SIM_CLOCK)
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
