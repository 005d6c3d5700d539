"""Review 19 (fix2): `smp serve --open` wrote console.html in the data directory with
`open_private_text` (no O_NOFOLLOW, no O_NONBLOCK), on the service's own event loop.
docs/service.md: "then opens the console in a browser without waiting for it ... the service
serves and takes its stop signals meanwhile ... The page is removed when the service stops."
A FIFO left at console.html blocks the service before any client gets in (no E-stop, SIGTERM
lost); a symlink there overwrites its target outside the data directory with the token page,
which outlives the service. The page is now made new (what was at its name removed, never
written through; O_EXCL|O_NOFOLLOW|O_NONBLOCK) from the browser-opening thread."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.sync.client import connect

SMP = str(Path(sys.executable).with_name("smp"))
WAIT_S = 30.0
pytestmark = pytest.mark.realtime


def _start(tmp_path: Path, data: Path) -> tuple[subprocess.Popen, str]:
    argv = tmp_path / "argv.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {argv}\n")
    browser.chmod(0o755)
    env = dict(os.environ, SMP_DATA_DIR=str(data), BROWSER=str(browser))
    env.pop("SMP_SERVICE", None)
    proc = subprocess.Popen([SMP, "serve", "--port", "pensim://", "--listen", "127.0.0.1:0",
                             "--no-socket", "--open"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    rpc = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if "JSON-RPC:" in line:
            rpc = line.split()[-1]
        if "console:" in line:
            break
    return proc, rpc


def _stop(proc: subprocess.Popen, fifo: Path | None = None) -> int | None:
    if fifo is not None and fifo.exists():  # release a writer blocked on the FIFO
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    proc.terminate()
    try:
        return proc.wait(WAIT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(WAIT_S)
        return None


def test_a_fifo_at_console_html_does_not_block_the_service(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    fifo = data / "console.html"
    os.mkfifo(fifo, 0o600)
    proc, rpc = _start(tmp_path, data)
    connected = False
    try:
        assert rpc, "smp serve printed no JSON-RPC URL"
        try:
            with connect(rpc, open_timeout=10):  # ms normally
                connected = True
        except TimeoutError:
            connected = False
    finally:
        _stop(proc, fifo)
    assert connected, "smp serve --open hung opening a FIFO at console.html: no client served"


def test_a_symlink_at_console_html_does_not_overwrite_its_target(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes\n")
    (data / "console.html").symlink_to(notes)
    proc, rpc = _start(tmp_path, data)
    try:
        assert rpc
        with connect(rpc, open_timeout=WAIT_S):  # served: the page was handled before
            pass
    finally:
        code = _stop(proc)
    assert code == 0
    text = notes.read_text()
    assert text == "my own notes\n", f"the token page overwrote a file outside: {text[:120]!r}"


def test_demo_web_takes_sigterm_with_a_fifo_at_console_html(tmp_path):
    """README: `smp demo --web` takes SIGTERM (exit 0). Its main thread blocks opening the FIFO
    at console.html: the signal handler runs, the open is retried, the demo never stops."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    fifo = data / "console.html"
    os.mkfifo(fifo, 0o600)
    browser = tmp_path / "browser.sh"
    browser.write_text("#!/bin/sh\nexit 0\n")
    browser.chmod(0o755)
    env = dict(os.environ, SMP_DATA_DIR=str(data), BROWSER=str(browser))
    env.pop("SMP_SERVICE", None)
    proc = subprocess.Popen([SMP, "demo", "--web", "--listen", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "JSON-RPC:" in line:
            break
    proc.terminate()
    try:
        code: int | None = proc.wait(10)  # well under a second normally
    except subprocess.TimeoutExpired:
        code = None
    finally:
        code_after = _stop(proc, fifo)
    assert code == 0, f"smp demo --web ignored SIGTERM (a FIFO at console.html); later {code_after}"


def test_the_page_is_made_new_and_only_our_own_is_removed(tmp_path, monkeypatch):
    """Beyond the example: a page left from before is replaced (0600 whatever was there), a
    directory at the name is one line and no browser, and a file put at the name after the
    page was written is not removed at stop."""
    from smpdevice.service import command

    opened: list[str] = []
    monkeypatch.setattr(command, "_open_browser", opened.append)  # no real browser here
    path = tmp_path / command.CONSOLE_PAGE
    path.write_text("old")
    path.chmod(0o644)
    page = command.ConsolePage(path, "http://127.0.0.1:1/#token=abc")
    page.write_and_open()
    assert opened == [path.as_uri()] and "token=abc" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    path.unlink()
    path.write_text("someone else's")  # put there since: not ours to remove
    page.forget()
    assert path.read_text() == "someone else's"
    path.unlink()
    path.mkdir()
    blocked = command.ConsolePage(path, "http://127.0.0.1:1/#token=abc")
    blocked.write_and_open()
    assert opened == [path.as_uri()] and path.is_dir()  # not opened a second time
    blocked.forget()
    assert path.is_dir()
