"""Review 19: `smp serve --open` and `smp demo --web` opened the browser on the service's own
thread: Python's `webbrowser` waits for a browser it starts as a plain command (`$BROWSER`, or
lynx/w3m without a display) until it exits, so no client got in (an E-stop neither: "any
client can E-stop") and `smp demo --web` ignored SIGTERM meanwhile. And the technician's token
was on the browser's command line (`ps` shows it to every local user). The browser is now
opened from a thread of its own, given a 0600 page in the data directory that sends it on to
the console URL, and that page is removed when the service stops."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from websockets.sync.client import connect

SMP = str(Path(sys.executable).with_name("smp"))
WAIT_S = 60.0  # generous: loaded cores; the waits end on conditions
# Real processes on the wall clock (the demo's simulated pen, calibrated at start).
pytestmark = pytest.mark.realtime


def _browser(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A `$BROWSER` that records its argv, then stays open until `release` exists (as a text
    browser stays until quit), longer than any wait here."""
    argv, release, script = tmp_path / "argv.txt", tmp_path / "release", tmp_path / "browser.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {argv}.tmp && mv {argv}.tmp {argv}\n"
                      f"i=0; while [ ! -e {release} ] && [ $i -lt 4000 ]; do "
                      "sleep 0.05; i=$((i+1)); done\n")
    script.chmod(0o755)
    return script, argv, release


def _env(tmp_path: Path, browser: Path) -> dict[str, str]:
    env = dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data"), BROWSER=str(browser))
    env.pop("SMP_SERVICE", None)
    return env


def _wait_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():  # the browser starts right after the URLs are printed
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_serve_open_answers_while_the_browser_runs_and_hides_the_token(tmp_path):
    script, argv, release = _browser(tmp_path)
    proc = subprocess.Popen([SMP, "serve", "--port", "pensim://", "--listen", "127.0.0.1:0",
                             "--no-socket", "--open"], env=_env(tmp_path, script),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rpc = console = ""
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the start lines: the URLs
            rpc = line.split()[-1] if "JSON-RPC:" in line else rpc
            if "console:" in line:
                console = line.split()[-1]
                break
        assert rpc and console, "smp serve printed no URLs"
        _wait_file(argv)  # the browser runs now, and stays open
        with connect(rpc, open_timeout=WAIT_S):  # ms normally; never, while serve waited
            pass
        args = argv.read_text().split()
        page = Path(unquote(urlparse(args[-1]).path))
        mode = stat.S_IMODE(page.stat().st_mode)
        redirect = page.read_text()
    finally:
        release.touch()
        proc.terminate()
        code = proc.wait(WAIT_S)
    token = console.split("#token=", 1)[1]
    assert not any(token in a for a in args), f"the token is on the browser's command line: {args}"
    assert args[-1].startswith("file://") and page.parent == tmp_path / "data", args
    assert mode == 0o600, oct(mode)
    assert f'content="0;url={console}"' in redirect, redirect
    assert code == 0
    assert not page.exists(), "the page with the token outlived the service"


def test_demo_web_stops_on_sigterm_while_the_opened_browser_runs(tmp_path):
    """README: `smp demo --web` takes SIGTERM: the service closes, exit 0. It opens a browser
    by default; the browser here stays open (up to 200 s) longer than this test waits."""
    script, argv, release = _browser(tmp_path)
    proc = subprocess.Popen([SMP, "demo", "--web", "--listen", "127.0.0.1:0"],
                            env=_env(tmp_path, script), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_file(argv)
        proc.terminate()
        try:
            code = proc.wait(WAIT_S)  # well under a second; old code: once the browser quit
        except subprocess.TimeoutExpired:
            code = None
    finally:
        release.touch()
        proc.wait(WAIT_S)
    assert code == 0, "smp demo --web did not stop on SIGTERM while its browser was open"
    assert not (tmp_path / "data" / "console.html").exists()
