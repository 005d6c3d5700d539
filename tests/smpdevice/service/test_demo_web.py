"""`smp demo --web` as a real process: it calibrates a simulated pen, serves it with the
console, prints the console URL with a token, lets a client in to E-stop, and stops cleanly
on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable

import pytest

from smpdevice.service.client import SyncServiceClient

# `smp demo --web` in a process of its own, its simulated pen on the wall clock: a pass-1
# neighbour (four workers, the realtime pass beside them) starved it past four tries of a
# NEEDLE_STOP once (fresh-clone CI, session 11). It runs in the realtime pass.
pytestmark = pytest.mark.realtime

WAIT_S = 120.0  # generous: calibration and start on 2 loaded cores; waits end on a line


def _lines(stream, into: queue.Queue) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue, pattern: str, seen: list[str],
              stderr: Callable[[], str] = str) -> re.Match:
    """The first line matching `pattern`; else an error quoting the demo's output and (once it
    ended) its stderr, which says why (a CI failure read only "calibrating..." before)."""
    while True:
        try:
            line = lines.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the demo ended before {pattern!r}:\n{''.join(seen)}"
                                 f"stderr:\n{stderr()}")
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            return found


def _joined(reader: threading.Thread, errors: list[str]) -> str:
    reader.join(WAIT_S)  # the demo ended: its stderr is closed, the reader ends
    return "".join(errors)


def test_demo_web_serves_the_console_and_any_client_can_estop(tmp_path):
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "smpdevice", "demo", "--web", "--listen",
                             "127.0.0.1:0", "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        console = _wait_for(lines, r"Console: (http://127\.0\.0\.1:(\d+)/#token=([\w-]+))", seen,
                            lambda: _joined(reader, errors))
        rpc = _wait_for(lines, r"JSON-RPC: (ws://\S+/rpc)", seen)
        base = console.group(1).split("#", 1)[0]
        with urllib.request.urlopen(base, timeout=30) as page:
            html = page.read().decode()
            assert page.status == 200 and "E-STOP" in html
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        token = console.group(3)  # the technician's, from the URL fragment
        with SyncServiceClient.connect(rpc.group(1), token=token, role="technician") as tech:
            ident = tech.call("pen.identity")
            assert ident["simulated"] is True and ident["calibration"] is not None
            answer = tech.estop()
            assert answer == {"ok": True, "state": "estop", "confirmed": True}
            assert tech.call("pen.state")["state"] == "estop"
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    rest = []
    while (line := lines.get(timeout=WAIT_S)) is not None:
        rest.append(line)
    assert code == 0, "".join(seen + rest + errors)
    assert "stopped." in "".join(rest)
    assert "Traceback" not in "".join(errors)
    assert not (tmp_path / "data" / "service.sock").exists()  # its socket removed on the way out
