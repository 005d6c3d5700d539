"""Review 16, finding 3: a service whose pass log fills its disk mid-session: the client hears
that the log failed (exit 3), how many passes completed, and how to resume
(smpdevice/service/session_play.py: no close while a pass is open; left open, `log_error`).

README, Exit status (one table for every command): 3 "the pass log cannot be read or written
(the needle was stopped first)"; "When a session does not complete": the summary says why, with
"N of M planned passes completed". Here `smp serve` may not grow a file past 130 KiB
(RLIMIT_FSIZE: a full disk for the service). Pass 1 completes and is recorded; pass 2's begin is
recorded, then the log fails. `smp run --service` then exits 7 with "INCOMPLETE: ended early (a
pass was stopped by the controller); 0 of 4 planned passes completed": wrong cause, wrong exit
status, and pass 1 (completed, in the log) not counted. The service logs "closing the session
failed" with a PassLogError traceback in smp.log; nothing tells the client the log failed.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
SMP = str(Path(sys.executable).parent / "smp")
PORT = "pensim://?clock=virtual"
LIMIT = 130 * 1024


def _smp(env, *args: str) -> subprocess.CompletedProcess:
    """`smp ARGS` in this process (tests/smpdevice/shell.py), another client of the service:
    the service under the file-size limit is the process under test."""
    return shell.smp(args, env=env, cwd=ROOT, input="")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_service_whose_log_fills_the_disk_tells_the_client_exit_3(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (
        "SMP_PORT", "SMP_SERVICE", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH")}
    data = shell.calibrated(tmp_path / "data", PORT)  # `smp calibrate --port PORT --auto`
    env.update(SMP_DATA_DIR=str(data), SMP_KEY_DIR=str(data / "key"),
               SMP_CONFIG=str(data / "no-config.toml"))
    listen = f"127.0.0.1:{_free_port()}"
    url = f"ws://{listen}/rpc"

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    serve = subprocess.Popen([SMP, "serve", "--port", PORT, "--listen", listen, "--no-socket"],
                             env=dict(env, PYTHONDONTWRITEBYTECODE="1"),  # no .pyc cut
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=full_disk)
    try:
        deadline = time.monotonic() + 60
        while _smp(env, "info", "--service", url).returncode != 0:  # until it answers
            assert serve.poll() is None and time.monotonic() < deadline, "serve never came up"
            time.sleep(0.05)  # (a refused connection is answered at once)
        run = _smp(env, "run", "examples/session1_base_density.yaml", "--service", url,
                   "-t", "ana", "--screening", "examples/screening_clear.yaml")
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)
    (session,) = json.loads(_smp(env, "sessions", "list", "--json").stdout)
    shown = _smp(env, "sessions", "show", session["session_id"]).stdout
    # the precondition: pass 1 completed and is recorded, the log failed on pass 2
    assert session["closed_at"] is None and session["pass_count"] == 2, session
    assert "completed" in shown
    said = run.stdout + run.stderr
    assert run.returncode == 3, (run.returncode, said)
    assert "0 of 4 planned passes completed" not in said, said
    assert "1 of 4 planned passes completed" in said and "INCOMPLETE" in said, said
    assert "pass log could not be written" in said, said
    assert f"--resume {session['session_id']} --service {url}" in said, said
