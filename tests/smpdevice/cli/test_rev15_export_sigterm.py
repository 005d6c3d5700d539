"""review15 F10: SIGTERM (a service manager) or SIGHUP (the terminal closed) during `smp
sessions export -o FILE` is taken as Ctrl-C: one line, exit 130, and the temporary
`.FILE.XXXX.partial` (with --identified it names clients) removed; FILE never appears."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench.passlog import fill  # noqa: E402 - the bench's own fast writer of a real log

SMP = str(Path(sys.executable).with_name("smp"))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    data = tmp_path_factory.mktemp("export-sigterm") / "data"
    data.mkdir()
    fill(data / "passlog.sqlite", 120_000)  # an export of about two seconds
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
