"""Ctrl-C while `smp run --service` waits for session.run's answer (review 15a, REVASYNC R04).

The request is not taken back by the Ctrl-C: the service opens the session all the same (it is
in the pass log, and its first pass may start). The CLI said "the session did not start: the
needle never ran"; it now waits for the answer, stops the session it names, and says so.

A real `smp run` process against a real service and simulator in this process. The service's
answer is held (its `work.start` opens the session as ever, then waits for the test) until the
CLI has taken the SIGINT, so the Ctrl-C surely lands while the CLI waits for that answer."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from simulators import PenSimulator
from smpdevice.outcomes import ExitCode
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.cli.test_cli_service import ROOT, WAIT_S, env  # noqa: F401  (fixture)
from tests.smpdevice.conftest import true_calibration

SIGINT_BIT = 1 << (signal.SIGINT - 1)


def _signal_taken(pid: int) -> bool:
    """Whether the kernel has handed `pid` its SIGINT (no longer pending): its main thread,
    blocked waiting for the answer, is then interrupted (Linux gives a process's signal to its
    main thread first when that one does not block it)."""
    pending = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            pending |= int(line.split()[1], 16)
    return not pending & SIGINT_BIT


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.mark.realtime  # a run in a child process drives a wall-clock pen here (its 1 s lease)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc/<pid>/status")
def test_ctrl_c_while_session_run_is_answered_stops_the_opened_session(
        env: dict[str, str]) -> None:  # noqa: F811
    with PenSimulator(seed=0) as sim, ServiceHandle(ServiceOptions(  # the CLI reads its token
            port=sim.url, listen="127.0.0.1:0", data_dir=Path(env["SMP_DATA_DIR"]),
            calibration=true_calibration(sim))) as handle:
        work = handle.server.service.work
        opened: dict[str, str] = {}
        release = threading.Event()
        start = work.start

        def start_and_hold_the_answer(client_id: str, p: dict[str, Any],
                                      *rest: Any) -> dict[str, Any]:
            answer = start(client_id, p, *rest)  # open (recorded), its first pass on its way
            opened["session_id"] = answer["session_id"]
            release.wait(WAIT_S)
            return answer

        work.start = start_and_hold_the_answer  # type: ignore[method-assign]
        run = subprocess.Popen([sys.executable, "-m", "smpdevice", "run",
                                "examples/session1_base_density.yaml", "--service", handle.url,
                                "-t", "ana", "--screening", "examples/screening_clear.yaml"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: "session_id" in opened or run.poll() is not None,
                  "the service to open the session")
            assert run.poll() is None, run.communicate()
            run.send_signal(signal.SIGINT)
            _wait(lambda: run.poll() is not None or _signal_taken(run.pid), "the SIGINT taken")
        finally:
            release.set()
        out, err = run.communicate(timeout=WAIT_S)
        _wait(lambda: not work.busy(), "the session to end")
        status = work.status() or {}

    sid = opened["session_id"]
    assert "never ran" not in err, (err, status)
    assert run.returncode == ExitCode.INTERRUPTED, (run.returncode, out, err)
    assert f"the needle is stopped; session {sid} is recorded by the service" in err, err
    assert "Traceback" not in err, err
    assert status.get("session_id") == sid and status.get("running") is False, status
    assert status.get("outcome") == "interrupted", status  # stopped as asked, and closed
