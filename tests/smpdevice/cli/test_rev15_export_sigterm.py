"""review15 F10: SIGTERM (a service manager) or SIGHUP (the terminal closed) during `smp
sessions export -o FILE` is taken as Ctrl-C: one line, exit 130, and the temporary
`.FILE.XXXX.partial` (with --identified it names clients) removed; FILE never appears."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench.passlog import fill  # noqa: E402 - the bench's own fast writer of a real log
from tests.run_once import run_dir, run_lock  # noqa: E402

SMP = str(Path(sys.executable).with_name("smp"))


@pytest.fixture
def data(tmp_path_factory, tmp_path):
    """A data directory of its own per test, copied from one log filled once per run: the fill
    is about 1.7 CPU-s, and the two tests went to two workers that each filled it."""
    root = run_dir(tmp_path_factory)
    built = root / "export-sigterm-data"
    with run_lock(root, "export-sigterm"):
        if not built.is_dir():
            part = Path(tempfile.mkdtemp(prefix="export-sigterm-", dir=root))
            fill(part / "passlog.sqlite", 120_000)  # an export of about two seconds
            part.rename(built)  # whole, or not there: a failed fill leaves nothing done
    data = tmp_path / "data"
    shutil.copytree(built, data)
    return data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_export_leaves_no_partial_file(tmp_path, data, sig):
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "SMP_DATA_DIR": str(data)}
    proc = subprocess.Popen([SMP, "sessions", "export", "--format", "csv", "--identified",
                             "-o", str(out / "passes.csv")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # until it writes its file
        if list(out.glob(".passes.csv.*.partial")):
            break
        time.sleep(0.01)
    else:
        proc.kill()
        pytest.fail("the export never started writing")
    assert proc.poll() is None, "the export ended before the signal: give it a larger log"
    proc.send_signal(sig)
    output, _ = proc.communicate(timeout=60)
    left = sorted(p.name for p in out.iterdir())
    assert left == [], f"left behind: {left}; exit {proc.returncode}; {output.decode()!r}"
    assert proc.returncode == 130, output.decode()  # as Ctrl-C: not 143/129, not silent
    lines = output.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), lines


@pytest.mark.parametrize("step", ["open", "fdopen"])
def test_a_stop_just_after_the_temporary_is_made_removes_it(tmp_path, monkeypatch, step):
    """The flake's window, made certain: the signal's KeyboardInterrupt lands at the first
    bytecode after the `.partial` was created (`os.open`) or given its handle (`os.fdopen`),
    before the writer's cleanup covered it; it was left behind, client names and all."""
    from smpdevice.records.files import private_text_output

    real_open, real_fdopen = os.open, os.fdopen

    def late_open(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        if step == "open" and str(path).endswith(".partial"):
            raise KeyboardInterrupt  # as the handler does, once the call has returned
        return fd

    def late_fdopen(*args, **kwargs):
        handle = real_fdopen(*args, **kwargs)
        if step == "fdopen":
            raise KeyboardInterrupt
        return handle

    monkeypatch.setattr(os, "open", late_open)
    monkeypatch.setattr(os, "fdopen", late_fdopen)
    with pytest.raises(KeyboardInterrupt), private_text_output(tmp_path / "passes.csv") as out:
        out.write("C-0042\n")
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
