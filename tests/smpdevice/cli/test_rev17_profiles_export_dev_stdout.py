"""`smp sessions export --format csv -o /dev/stdout | consumer` failed: "cannot write --output
/dev/stdout: No such file or directory", exit 2 (to a file or a terminal it worked). The
output path was resolved (`realpath`) before it was looked at: /dev/stdout of a pipe resolves
to `/proc/PID/fd/pipe:[N]`, which names nothing, so it was taken for a new file to make beside
it. Now what the path opens is looked at: a pipe or a device is written as it is, a regular
file (or a new one) still whole or not at all (review 17)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("export")
    data = shell.calibrated(tmp_path / "data")
    env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_KEY_DIR": str(tmp_path / "keys"),
           "SMP_CONFIG": str(tmp_path / "none.toml")}
    ran = shell.smp(("run", "examples/session1_base_density.yaml", "--port",
                     "pensim://?clock=virtual", "-t", "ana", "--screening",
                     "examples/screening_clear.yaml"), env=env, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr[-300:]
    return env


def _export(env, output: str) -> subprocess.CompletedProcess:
    """In a process of its own: its standard output is a real pipe, /dev/stdout names it."""
    return subprocess.run([sys.executable, "-m", "smpdevice", "sessions", "export", "--format",
                           "csv", "-o", output], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)


def _export_here(env, output: str) -> subprocess.CompletedProcess:
    """In this process (shell.smp answers as the process would): for an output named by a
    path of the file system, where what the process's own descriptors are is not the point."""
    return shell.smp(("sessions", "export", "--format", "csv", "-o", output), env=env, cwd=ROOT)


@pytest.mark.parametrize("output", ["/dev/stdout", "/dev/fd/1"])
def test_export_to_standard_output_by_name_through_a_pipe(env, output):
    export = _export(env, output)  # its stdout is a pipe (captured)
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith("session_id,") and export.stdout.count("\n") == 5


def test_export_into_a_named_pipe_beside_a_symlink(env, tmp_path):
    fifo = tmp_path / "passes.fifo"
    os.mkfifo(fifo)
    (tmp_path / "link.csv").symlink_to(fifo)
    read: list[str] = []
    reader = threading.Thread(target=lambda: read.append(fifo.read_text()), daemon=True)
    reader.start()
    export = _export_here(env, str(tmp_path / "link.csv"))
    reader.join(timeout=60)
    assert export.returncode == 0, export.stderr
    assert read and read[0].startswith("session_id,") and read[0].count("\n") == 5
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir()) == [
        "link.csv", "passes.fifo"]  # written as it is: no temporary left, no file made


def test_a_regular_file_behind_a_symlink_is_still_replaced_whole(env, tmp_path):
    target = tmp_path / "passes.csv"
    target.write_text("old\n")
    target.chmod(0o644)
    (tmp_path / "link.csv").symlink_to(target)
    export = _export_here(env, str(tmp_path / "link.csv"))
    assert export.returncode == 0, export.stderr
    assert target.read_text().startswith("session_id,") and target.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "link.csv").is_symlink()
