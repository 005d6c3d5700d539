"""Ctrl-C held down (review 12, REVG-5): README "130 | Ctrl-C: the needle was stopped and what
ran was recorded". SIGINT over and over, through the stop, the records, the exit and the
interpreter's own end: the process exits 130, never dies *by* SIGINT (-2, which a program that
started `smp` reads as a kill before anything was handled)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from smpdevice.cli.interrupt import CtrlC
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    SmpRun,
    assert_honest,
    calibrate_default_pen,
    short_profile,
)

KEY_REPEAT_S = 0.002  # a held key's repeat rate (what is sent), not a wait on anything


def hold_ctrl_c(child: subprocess.Popen) -> None:
    """SIGINT every KEY_REPEAT_S until `child` ends."""
    ended = threading.Event()
    while child.poll() is None and not ended.wait(KEY_REPEAT_S):
        child.send_signal(signal.SIGINT)


@pytest.mark.realtime  # `smp run` in a child process, its pen on the wall clock, signalled mid-pass
def test_ctrl_c_held_down_through_the_stop_and_the_exit_is_exit_130(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    run = SmpRun(data_dir, short_profile(tmp_path, seconds="30"))
    run.wait_for(lambda e: e.get("event") == "checkpoint" and e.get("strokes", 0) > 0)
    hold_ctrl_c(run.child)
    code, stderr = run.interrupt_and_wait()  # (the child has ended: no signal is sent)
    line = assert_honest(code, stderr, data_dir / "passlog.sqlite")
    assert "pass 1 as stopped" in line, line


@pytest.mark.realtime  # `smp run` in a child process, its pen on the wall clock, signalled mid-pass
def test_ctrl_c_held_down_from_the_start_is_exit_130_and_the_starting_line(data_dir, tmp_path):
    """From the first line the program says (before its slow imports) to its end."""
    calibrate_default_pen(data_dir)
    child = subprocess.Popen(
        [sys.executable, "-m", "smpdevice", "run", str(short_profile(tmp_path)), "-t", "ana",
         "--screening", str(SCREENING), "--port", "pensim://"],
        env={**os.environ, "SMP_LOG_LEVEL": "info", "SMP_LOG_FORMAT": "json",
             "SMP_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    first = child.stderr.readline()
    assert '"event": "starting"' in first, first
    holder = threading.Thread(target=hold_ctrl_c, args=(child,))
    holder.start()
    _, rest = child.communicate(timeout=120)
    holder.join()
    assert_honest(child.returncode, first + rest, data_dir / "passlog.sqlite")


@pytest.fixture
def sigint_restored():
    previous = signal.getsignal(signal.SIGINT)
    yield previous
    signal.signal(signal.SIGINT, previous)


def test_the_program_ignores_ctrl_c_once_its_command_ended(sigint_restored):
    """In the `smp` program (`own_process`), the end of a command leaves SIGINT ignored: the
    exit status is decided. In any other process (a test's), the previous handler is back."""
    with CtrlC().command():
        pass
    assert signal.getsignal(signal.SIGINT) is sigint_restored
    program = CtrlC()
    program.own_process()
    with program.command():
        pass
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    os.kill(os.getpid(), signal.SIGINT)  # a press after the end: nothing raises


@pytest.mark.parametrize("owner", [True, False])
def test_ctrl_c_as_a_command_ends_never_raises(sigint_restored, monkeypatch, owner):
    """A press that lands as the command's deferral has ended and before the handler is
    swapped (the outcome decided, the exit on its way) is counted, never raised."""
    ctrl_c = CtrlC()
    if owner:
        ctrl_c.own_process()
    real_signal = signal.signal
    pressed = []

    def swap(signum, handler):
        if handler != ctrl_c._on_sigint and not pressed:  # the swap at the end
            pressed.append(True)
            ctrl_c._on_sigint(signum, None)  # the press, at that very moment
        return real_signal(signum, handler)

    monkeypatch.setattr(signal, "signal", swap)
    with ctrl_c.command():
        pass
    assert pressed and ctrl_c.requested


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    return tmp_path


def test_a_ctrl_c_cpython_flagged_as_unhandled_does_not_kill_the_exit(tmp_path):
    """A Ctrl-C that lands in code exec() runs from a string (a dataclass's or a namedtuple's
    methods are made so, as a command's modules are imported) leaves CPython's "unhandled
    KeyboardInterrupt" flag set though the command handled it: `python -m smpdevice` then
    killed itself by SIGINT at its very end (6 of 40 `smp monitor` runs with Ctrl-C held).
    The exit status the program decided stands."""
    code = ("import sys\n"
            "from smpdevice.entry import main\n"
            "import smpdevice.cli\n"
            "try:\n"
            "    exec('raise KeyboardInterrupt')  # the Ctrl-C, inside exec'd code\n"
            "except KeyboardInterrupt:\n"
            "    pass  # handled, as the command line handles it\n"
            "sys.argv = ['smp', '--version']\n"
            "main()\n")
    (tmp_path / "flagged_smp.py").write_text(code)  # run with -m, as `python -m smpdevice`
    done = subprocess.run([sys.executable, "-m", "flagged_smp"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "SMP_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert done.stdout.startswith("smp, version")
