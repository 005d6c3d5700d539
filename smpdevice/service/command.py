"""`smp serve`: own one pen and serve it to many clients (JSON-RPC, web console)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
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
@click.option("--open", "open_browser", is_flag=True, help="Open the console in a browser.")
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
            import webbrowser

            webbrowser.open(server.console_url())

    try:
        asyncio.run(_main(options, ready))
        click.echo("stopped.")  # serve_forever ends only when Ctrl-C, SIGTERM or SIGHUP ends it
    except KeyboardInterrupt:  # where the loop takes no signal handlers
        click.echo("stopped.")
    finally:
        if sim is not None:
            sim.close()


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
