"""Review 16c: after a pass log that could not be written (a full disk) ended the run, a SIGTERM or
SIGHUP while `smp run` prints its INCOMPLETE summary kills it by the signal (exit -15 / -1): the
`smp run --resume` command and the rest of the summary are never printed, and exit 3 is lost.
A Ctrl-C at the same point already gives exit 3 with a `note:` line.

README, "When a session does not complete": "A pass log that cannot be written mid-session (a
full disk) stops the needle first; the session is left OPEN ... `smp run` says INCOMPLETE, how
many passes completed, and the `smp run --resume` command to run once the disk has room; exit
3." and "A Ctrl-C, SIGTERM or SIGHUP that comes once the session has ended (recorded) changes
nothing: the summary ... still printed, the status is the recorded outcome's, with a `note:`
line." The log-failure path (cli/playing.py log_failed) never calls CTRL_C.settle(), so the
SIGTERM/SIGHUP handlers are put back to their defaults before the summary is printed.
The disk is made full with RLIMIT_FSIZE; the run is held (a full stdout pipe) in its summary.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
SMP = str(Path(sys.executable).parent / "smp")
PORT = "pensim://?clock=virtual"
RUN = ["run", "examples/session1_base_density.yaml", "--port", PORT, "-t", "ana",
       "--screening", "examples/screening_clear.yaml"]
LIMIT = 180_000  # bytes a file may grow to: the pass log's WAL fails in pass 3
F_SETPIPE_SZ = 1031
PIPE_BYTES = 4096


def _full_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    # under the file-size limit a child writes no byte-code: a .pyc cut at the limit in the
    # shared cache would break every later import of that module (session 13)
    return dict(env, SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(data / "key"),
                SMP_CONFIG=str(data / "no-config.toml"), TMPDIR="/dev/shm",
                PYTHONDONTWRITEBYTECODE="1")


def _blocked_in_write(proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if "pipe_write" in Path(f"/proc/{proc.pid}/wchan").read_text():
            return True
        time.sleep(0.01)  # a condition: the process blocked on its full stdout
    return False


_REFERENCE: list[tuple[str, str]] = []  # (its data directory, its stdout): one per process


def _summary_offset(data: Path) -> int:
    """Where ` INCOMPLETE` starts in the output of this run in `data`. A reference run under the
    same limit, once per test process (both signals' runs print the same bytes up to there: a
    virtual clock, fixed-width ids), in a station of its own; its data directory, printed
    before the summary, is put back as `data`."""
    if not _REFERENCE:
        ref_dir = Path(tempfile.mkdtemp(prefix="rev16c-ref-"))
        atexit.register(shutil.rmtree, ref_dir, True)
        shell.calibrated(ref_dir / "data", PORT)
        ref = subprocess.run([SMP, *RUN], env=_env(ref_dir / "data"), cwd=ROOT,
                             capture_output=True, text=True, timeout=120, preexec_fn=_full_disk)
        assert ref.returncode == 3 and "INCOMPLETE" in ref.stdout, (ref.returncode, ref.stderr)
        _REFERENCE.append((str(ref_dir / "data"), ref.stdout))
    ref_data, ref_out = _REFERENCE[0]
    before = ref_out[:ref_out.index(" INCOMPLETE")]  # holds the pass log's path (pass 3)
    return len(before.replace(ref_data, str(data)).encode())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_a_stop_signal_during_the_log_failure_summary_keeps_exit_3(tmp_path, signum):
    # `smp calibrate --port PORT --auto`, run once in this process and copied (shell.py)
    station = shell.calibrated(tmp_path / "station", PORT)
    shutil.copytree(station, tmp_path / "run")
    offset = _summary_offset(tmp_path / "run")
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_BYTES)
    os.write(write_fd, b"x" * (PIPE_BYTES - offset - 8))  # room up to the summary
    proc = subprocess.Popen([SMP, *RUN], env=_env(tmp_path / "run"), cwd=ROOT, stdout=write_fd,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_full_disk)
    os.close(write_fd)
    try:
        assert _blocked_in_write(proc), "the run never blocked on its stdout"
        proc.send_signal(signum)
    finally:
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        err = proc.communicate(timeout=60)[1]
    out = b"".join(chunks)[PIPE_BYTES - offset - 8:].decode()
    assert proc.returncode == 3, (proc.returncode, err[-300:], out[-300:])
    assert "smp run --resume" in out, out
    assert "note: Ctrl-C came too late" in err, err
