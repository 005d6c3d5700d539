"""Review 18 (cli): a Ctrl-C that lands while a command's lazily imported module creates a
class (CPython 3.11 wraps the KeyboardInterrupt raised in `__set_name__` in a RuntimeError)
prints a traceback and exits 1. README: "Ctrl-C at any moment stops the needle first ... and
prints one line"; exit 130 is Ctrl-C. The real SIGINT is sent by the process to itself at the
first `__set_name__` of a pydantic model or dataclass once the command's module is loaded: the
timing is made exact, nothing of the product is replaced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench.passlog import fill  # noqa: E402 - the bench's own fast writer of a real log

CHILD = r"""
import os, signal, sys
sent = []
def hook(frame, event, arg):
    if (event == "call" and not sent and frame.f_code.co_name == "__set_name__"
            and PATTERN in frame.f_code.co_filename and MODULE in sys.modules):
        sent.append(frame.f_code.co_filename)
        os.kill(os.getpid(), signal.SIGINT)
sys.setprofile(hook)
sys.argv = ["smp", "profile", "check", "examples/session2_shading.yaml"]
from smpdevice.entry import main
try:
    main()
finally:
    sys.setprofile(None)
    assert sent, "the Ctrl-C was never sent"
"""


@pytest.mark.parametrize(("pattern", "module"), [
    ("pydantic", "smpdevice.cli.profile"), ("dataclasses", "smpdevice.cli.profile"),
])
def test_ctrl_c_while_a_class_is_created_is_one_line_and_exit_130(pattern, module):
    code = CHILD.replace("PATTERN", repr(pattern)).replace("MODULE", repr(module))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, stdin=subprocess.DEVNULL, timeout=60)
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 130, (done.returncode, done.stderr[-300:])
    assert done.stderr.count("interrupted:") == 1, done.stderr[-300:]


EXPORT_CHILD = r"""
import os, signal, sys
sent = []
def hook(frame, event, arg):
    if (event == "call" and not sent and frame.f_code.co_name == "__set_name__"
            and "pydantic" in frame.f_code.co_filename
            and "smpdevice.cli.sessions_export" in sys.modules):
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)
sys.setprofile(hook)
sys.argv = ["smp", "sessions", "export", "--format", "csv", "-o", sys.argv[1]]
from smpdevice.entry import main
try:
    main()
finally:
    sys.setprofile(None)
    assert sent, "the SIGTERM was never sent"
"""


def test_sigterm_during_export_while_a_class_is_created_exits_130(tmp_path):
    """README exit 130: "SIGTERM/SIGHUP ... during `smp sessions export`, whose `-o`
    temporary is then removed"."""
    data = Path(os.environ["SMP_DATA_DIR"])
    fill(data / "passlog.sqlite", 10)  # a log to export: the export goes on to its checks
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = subprocess.run([sys.executable, "-c", EXPORT_CHILD, str(out_dir / "passes.csv")],
                          capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          timeout=60)
    assert "Traceback" not in done.stderr, done.stderr[-600:]
    assert done.returncode == 130, (done.returncode, done.stderr[-300:])
    assert "interrupted:" in done.stderr, done.stderr[-300:]
    assert sorted(p.name for p in out_dir.iterdir()) == []


def test_a_wrapped_ctrl_c_is_told_from_other_errors():
    """entry.main() and the command line answer an error whose cause chain holds a
    KeyboardInterrupt as Ctrl-C; any other error is not one, nor one raised while a Ctrl-C was
    handled (review 18c: its traceback is kept); a cycle in the chain ends."""
    from smpdevice.entry import holds_interrupt

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ctrl_c:
            raise RuntimeError("Error calling __set_name__") from ctrl_c
    except RuntimeError as wrapped:
        assert holds_interrupt(wrapped)
        assert holds_interrupt(ValueError("later")) is False
        outer = TypeError("while handling")
        outer.__context__ = wrapped
        assert holds_interrupt(outer) is False
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert holds_interrupt(first) is False
