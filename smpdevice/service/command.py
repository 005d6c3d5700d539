"""`smp serve`: own one pen and serve it to many clients (JSON-RPC, web console)."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from smpdevice.errors import SmpError


@click.command()
@click.option("--port", "-p", "pen_port", metavar="URL", envvar="SMP_PORT", required=True,
              help="The pen: a serial port, socket://HOST:PORT or pensim:// (simulated; on "
                   "virtual time with SMP_SIM_CLOCK=virtual or pensim://?clock=virtual).")
@click.option("--listen", default="127.0.0.1:8765", show_default=True, metavar="HOST:PORT",
              help="WebSocket and console address (loopback only unless --allow-remote).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --listen address (needs --tls-cert and --tls-key).")
@click.option("--tls-cert", metavar="FILE", help="TLS certificate (PEM) for wss:// and https://.")
@click.option("--tls-key", metavar="FILE", help="TLS private key (PEM).")
@click.option("--no-socket", is_flag=True, help="Do not open the Unix socket in the data dir.")
@click.option("--lease-ms", default=500, show_default=True, type=click.IntRange(50, 65535),
              help="The pen's own dead-man lease.")
@click.option("--telemetry-hz", default=50, show_default=True, type=click.IntRange(1, 100),
              help="Telemetry rate asked of the pen (clients subscribe at up to this).")
@click.option("--envelope", metavar="FILE",
              help="Zone limits for every client's session (YAML/JSON, as `smp run "
                   "--envelope`); still narrowed to the pen's limits. Default: $SMP_ENVELOPE, "
                   "else `envelope` in the station config, else the built-in zones.")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the console in a browser (through a 0600 page in the data directory: "
                   "the token stays off the browser's command line).")
def serve(pen_port: str, listen: str, allow_remote: bool, tls_cert: str | None,
          tls_key: str | None, no_socket: bool, lease_ms: int, telemetry_hz: int,
          envelope: str | None, open_browser: bool) -> None:
    """Own one pen and serve it: JSON-RPC 2.0 over WebSocket and a Unix socket, and the
    technician's web console.

    Clients authenticate with a token from service.tokens.json (0600) in the data directory;
    the console URL printed at start carries the technician's token. Any authenticated client
    can E-stop. The pen's lease is renewed only while the driving client sends heartbeats.
    See docs/service.md.

    \b
    Examples:
      smp serve --port pensim://
      smp serve --port /dev/ttyACM0 --listen 127.0.0.1:9000
    """
    from smpdevice.service.runner import ServiceOptions

    options = ServiceOptions(port=pen_port, listen=listen, allow_remote=allow_remote,
                             tls_cert=tls_cert, tls_key=tls_key, unix_socket=not no_socket,
                             lease_ms=lease_ms, telemetry_hz=telemetry_hz,
                             envelope=envelope)
    sim = own_simulated_pen(pen_port)
    if sim is not None:
        options.port = sim.url
    opened: list[ConsolePage] = []  # the console's redirect page, removed when the service stops

    def ready(server: Any) -> None:
        pen = server.service.pen
        click.echo(f"Serving pen {pen.identity.serial} ({pen.port_url}), state "
                   f"{pen.state.value}{'' if pen.calibration else ', not calibrated'}.")
        if pen.calibration is None and server.service.calibration_problem:
            click.echo(f"  calibration problem: {server.service.calibration_problem}")
        click.echo(f"  JSON-RPC:  {server.url}")
        if server.socket_path is not None:
            click.echo(f"  socket:    unix://{server.socket_path}")
        click.echo(f"  console:   {server.console_url()}")
        click.echo("Tokens: service.tokens.json in the data directory. Ctrl-C stops.")
        if open_browser:
            opened.append(open_console(server.console_url(), service_dir(server)))

    try:
        asyncio.run(_main(options, ready))
        click.echo("stopped.")  # serve_forever ends only when Ctrl-C, SIGTERM or SIGHUP ends it
    except KeyboardInterrupt:  # where the loop takes no signal handlers
        click.echo("stopped.")
    finally:
        for page in opened:
            page.forget()
        if sim is not None:
            sim.close()


CONSOLE_PAGE = "console.html"


def service_dir(server: Any) -> Path:
    """The data directory the service runs on (its pass log's)."""
    from smpdevice.paths import data_dir

    passlog = server.service.passlog_path
    return Path(passlog).parent if passlog is not None else data_dir()


def open_console(url: str, directory: Path) -> ConsolePage:
    """Open the console `url` in a browser without waiting for it, and without its token on the
    browser's command line (any local user reads that with `ps`): the browser is given
    `directory`/console.html (0600, in the 0700 data directory, as the token file) that sends
    it on to `url`. Written and opened from a thread of its own: `webbrowser` waits for a
    browser it starts as a plain command ($BROWSER, lynx or w3m without a display) until that
    browser exits, and whatever is found at the page's name (a FIFO) must not hold the service
    (an E-stop included) or `smp demo --web`'s stop signals either. Returns the page, for
    `page.forget()` when the service stops. A page that cannot be written: one line, no
    browser opened; the service serves on."""
    page = ConsolePage(directory / CONSOLE_PAGE, url)
    threading.Thread(target=page.write_and_open, daemon=True, name="smp-open-browser").start()
    return page


class ConsolePage:
    """The redirect page: written new (never through what was at its name), removed at stop
    only while it is still the file written (not one put there since)."""

    def __init__(self, path: Path, url: str) -> None:
        self.path, self.url = path, url
        self._lock = threading.Lock()
        self._written: tuple[int, int] | None = None  # (st_dev, st_ino) of our own page
        self._forgotten = False

    def write_and_open(self) -> None:
        with self._lock:
            if self._forgotten:  # the service stopped first
                return
            try:
                self._written = write_console_page(self.url, self.path)
            except OSError as exc:
                click.echo(f"No browser opened: cannot write {self.path}: {exc.strerror}; open "
                           "the console URL printed above.", err=True)
                return
        _open_browser(self.path.as_uri())

    def forget(self) -> None:
        with self._lock:
            self._forgotten = True
            written, self._written = self._written, None
        if written is None:
            return
        with contextlib.suppress(OSError):
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == written:
                self.path.unlink()


def write_console_page(url: str, page: Path) -> tuple[int, int]:
    """`page`: an HTML page that sends the browser on to `url`, made new and private (0600):
    whatever was at its name (an old page, a symlink, a FIFO) is removed first, never written
    through; nothing there blocks. Returns the page's (st_dev, st_ino)."""
    with contextlib.suppress(FileNotFoundError):
        page.unlink()  # a symlink: the link only; a directory: OSError, not written
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NONBLOCK,
                 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        info = os.fstat(fd)
        data = _redirect_html(url).encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            page.unlink()
        raise
    os.close(fd)
    return info.st_dev, info.st_ino



def _open_browser(page_uri: str) -> None:
    import webbrowser

    try:
        opened = webbrowser.open(page_uri)
    except Exception:  # a broken $BROWSER: the URL printed still works
        opened = False
    if not opened:
        click.echo("No browser opened the console: open the console URL printed above.",
                   err=True)


def _redirect_html(url: str) -> str:
    attr = html.escape(url, quote=True)
    script = json.dumps(url).replace("</", "<\\/")  # never ends the script element
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"refresh\" content=\"0;url={attr}\">\n"
            "<title>smpdevice console</title></head>\n"
            f"<body><p><a href=\"{attr}\">Open the smpdevice console</a></p>\n"
            f"<script>location.replace({script});</script></body></html>\n")


def own_simulated_pen(pen_port: str) -> Any:
    """For `--port pensim://`: a simulated pen made in this process, so that its gauge can be
    read (auto calibration), on the clock SMP_SIM_CLOCK names (real time unless it says
    virtual); None for any other port."""
    if pen_port.strip().lower() not in ("pensim://", "pensim"):
        return None
    from simulators import PenSimulator
    from simulators.clock import sim_clock

    try:
        clock = sim_clock()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return PenSimulator(clock=clock)


def cancel_once(task: asyncio.Task, name: str = "SIGTERM") -> Callable[[], None]:
    """The handler of SIGTERM, SIGHUP and Ctrl-C: the first one stops the service; another one (an
    impatient supervisor, a second Ctrl-C) must not cut its close short, which stops and
    disarms the pen and closes the port (else the pen's own lease stops it, fault latched)."""
    def on_signal() -> None:
        if task.cancelling() == 0 and not task.done():
            task.cancel()
        else:
            import structlog

            structlog.get_logger("smpdevice.service").warning(
                f"{name} again: the service is already closing; it stops the pen first")
    return on_signal


async def _main(options: Any, ready: Any) -> None:
    from smpdevice.service.runner import serve_forever

    task = asyncio.ensure_future(serve_forever(options, ready))
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, cancel_once(task))
        # SIGHUP (the terminal closed) as SIGTERM: its default ends the process on the spot,
        # with no close, and the pen's own lease then stops the needle, a fault latched
        loop.add_signal_handler(signal.SIGHUP, cancel_once(task, "SIGHUP"))
        loop.add_signal_handler(signal.SIGINT, cancel_once(task, "Ctrl-C"))
    try:
        await task
    except asyncio.CancelledError:
        pass
    except SmpError:
        raise
