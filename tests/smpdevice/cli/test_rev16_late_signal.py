"""Review 16, finding 1: a stop signal that comes after the session closed, while `smp run`
prints its summary, changes nothing (CtrlC.settle, smpdevice/cli/interrupt.py).

README "When a session does not complete": once the session's records are open, SIGTERM and
SIGHUP are taken as Ctrl-C; and (Exit status, 130) a Ctrl-C that comes after the session ended
changes nothing: the status is the recorded outcome's, 0 for `completed`, with a `note:` line.
Here the run is held (a full stdout pipe) after its session closed `completed`, while it prints
the aftercare sheet; a SIGTERM/SIGHUP then kills the process by the signal instead (exit -15/-1,
the rest of the aftercare sheet and the record receipt never printed). A Ctrl-C at the same
point raised KeyboardInterrupt: exit 130, "the command stopped before finishing". Now all three
leave the status the record's (0) with a `note:` line, and the whole report printed.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
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
SMP = [str(Path(sys.executable).parent / "smp")]
PORT = "pensim://?clock=virtual"
RUN = ["run", "examples/session1_base_density.yaml", "--port", PORT, "-t", "ana",
       "--screening", "examples/screening_clear.yaml"]
F_SETPIPE_SZ = 1031
PIPE_BYTES = 4096


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (
        "SMP_PORT", "SMP_SERVICE", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH")}
    return dict(env, SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(data / "key"),
                SMP_CONFIG=str(data / "no-config.toml"),
                TMPDIR="/dev/shm" if os.path.isdir("/dev/shm") else str(data))


def _blocked_in_write(pid: int, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if "pipe_write" in Path(f"/proc/{pid}/wchan").read_text():
            return True
        time.sleep(0.01)  # waiting on a condition: the process blocked on its full stdout
    return False


_REFERENCE: list[tuple[str, str]] = []  # (its data directory, its stdout): one per process


def _aftercare_offset(data: Path) -> int:
    """Where the aftercare sheet starts in the output of this run in `data`. A reference run,
    once per test process, in a station of its own (a run on virtual time: its figures and ids
    have the same widths from run to run); a data directory printed before the sheet would be
    put back as `data`."""
    if not _REFERENCE:
        ref_dir = Path(tempfile.mkdtemp(prefix="rev16-late-ref-"))
        atexit.register(shutil.rmtree, ref_dir, True)
        ref_data = shell.calibrated(ref_dir / "data", PORT)
        first = shell.smp(RUN, env=_env(ref_data), cwd=ROOT, input="")
        assert first.returncode == 0, first.stderr
        _REFERENCE.append((str(ref_data), first.stdout))
    ref_data_s, ref_out = _REFERENCE[0]
    before = ref_out[:ref_out.index("Scalp micropigmentation: aftercare")]
    return len(before.replace(ref_data_s, str(data)).encode())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT],
                         ids=["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_after_the_session_closed_changes_nothing(tmp_path, signum):
    # set-up, the reference run and the read-back in this process (tests/smpdevice/shell.py):
    # the held run below is the process under test
    data = shell.calibrated(tmp_path / "data", PORT)  # `smp calibrate --auto`, copied
    env = _env(data)
    offset = _aftercare_offset(data)
    # a stdout pipe with room for everything up to the aftercare sheet: the run blocks there,
    # after its session closed
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_BYTES)
    os.write(write_fd, b"x" * (PIPE_BYTES - offset - 8))
    proc = subprocess.Popen([*SMP, *RUN], env=env, cwd=ROOT, stdout=write_fd,
                            stderr=subprocess.PIPE, text=True)
    os.close(write_fd)
    try:
        assert _blocked_in_write(proc.pid, proc), "the run never blocked on its stdout"
        sessions = json.loads(shell.smp(["sessions", "list", "--json"], env=env,
                                        cwd=ROOT).stdout)
        latest = max(sessions, key=lambda s: s["opened_at"])
        assert latest["closed_at"] is not None and latest["pass_count"] == 4, latest
        proc.send_signal(signum)
    finally:
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        err = proc.communicate(timeout=60)[1]
    out = b"".join(chunks)[PIPE_BYTES - offset - 8:].decode()
    assert proc.returncode == 0, (proc.returncode, err, out[-400:])
    assert "Record receipt" in out and "SMP-RECEIPT/1" in out, out
    assert "note: Ctrl-C came too late to change session" in err and "completed" in err, err
    assert "interrupted" not in err, err
