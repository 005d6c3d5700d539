"""`smp sim`: run the simulated pen for other programs to reach (pseudo-terminal or TCP)."""

from __future__ import annotations

import errno
import inspect
import signal
import threading
from collections.abc import Callable
from textwrap import indent
from typing import TypeVar

import click

from simulators.faults import fault_spec_help
from simulators.pen_model import BAUD_RANGE, LEASE_MAX_MS_RANGE, TELEMETRY_HZ_RANGE
from smpdevice.cli.demo import SeedNumber  # what pensim://?seed= takes, as `smp demo --seed`

T = TypeVar("T")

# The fault list comes from the parser's tables (fault_spec_help), so it cannot drift from them.
HELP = """Run a simulated pen until Ctrl-C, reachable like a real one.

    \b
    The FIRST line of output is where to connect:
      --pty         a device path such as /dev/pts/7   (open it as a serial port)
      --tcp PORT    socket://127.0.0.1:PORT            (pyserial URL)
    The second line is the depth gauge (TCP, loopback): send "READ\\n", get "0.5234\\n" (mm of
    true needle protrusion, what calibration measures).

    \b
    Example, in two terminals:
      $ smp sim --seed 3 --faults 'drop=0.001,jam@30-35'
      /dev/pts/7
      gauge: tcp://127.0.0.1:40123 (send READ)
      ...
      $ smp info --port /dev/pts/7
      $ smp calibrate --port /dev/pts/7 --gauge tcp://127.0.0.1:40123

    \b
    Fault SPEC items, joined by commas:
{faults}
    The same seed and spec give the same pen: the same model, noise and faults at the
    same pen times (a pass a timed fault cuts may differ by an impression or two; see
    docs/simulator.md).
    """


@click.command("sim", help=inspect.cleandoc(HELP.format(faults=indent(fault_spec_help(), "    "))))
@click.option("--pty", "use_pty", is_flag=True,
              help="Serve the pen on a pseudo-terminal (the default). Its path is printed first.")
@click.option("--tcp", "tcp_port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve the pen on 127.0.0.1:PORT instead (0 = any free port).")
@click.option("--seed", type=SeedNumber(), default=0, show_default=True,
              help="Which pen: the serial number and hidden calibration error come from it.")
@click.option("--faults", default=None, metavar="SPEC",
              help="Faults to inject, e.g. 'drop=0.01,jam@5-8,brownout~0.01' "
                   "(see docs/simulator.md).")
@click.option("--baud", type=click.IntRange(*BAUD_RANGE), default=None,
              help="Pace the wire like a UART at this baud rate (e.g. 115200).")
@click.option("--gauge-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port of the depth gauge on 127.0.0.1 (0 = any free port).")
@click.option("--lease-max-ms", type=click.IntRange(*LEASE_MAX_MS_RANGE), default=None,
              help="Longest lease the pen grants (IDENTIFY sends it as a u16).")
@click.option("--telemetry-hz", type=click.IntRange(*TELEMETRY_HZ_RANGE), default=None,
              help="Telemetry rate after boot.")
def sim(use_pty: bool, tcp_port: int | None, seed: int, faults: str | None, baud: int | None,
        gauge_port: int, lease_max_ms: int | None, telemetry_hz: int | None) -> None:
    """Run a simulated pen until Ctrl-C (help text: HELP above)."""
    from simulators.faults import parse_fault_spec
    from simulators.gauge import GaugeServer
    from simulators.pen_model import PenModel
    from simulators.reach import PtyBridge, TcpBridge
    from simulators.sim import PenSimulator

    if use_pty and tcp_port is not None:
        raise click.UsageError("choose one of --pty and --tcp")
    try:
        plan = parse_fault_spec(faults)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    model = PenModel(seed=seed)
    if lease_max_ms is not None:
        model.lease_max_ms = lease_max_ms
    if telemetry_hz is not None:
        model.telemetry_default_hz = telemetry_hz

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pen = PenSimulator(model=model, link_faults=plan, baud=baud)
    bridge: PtyBridge | TcpBridge | None = None
    gauge: GaugeServer | None = None
    try:
        bridge = (PtyBridge(pen) if tcp_port is None else
                  _listening("--tcp", tcp_port, None, lambda: TcpBridge(pen, tcp_port)))
        gauge = _listening("--gauge-port", gauge_port, tcp_port,
                           lambda: GaugeServer(pen.gauge, gauge_port))
        click.echo(bridge.path if isinstance(bridge, PtyBridge) else bridge.url)
        host, port = gauge.address
        click.echo(f"gauge: tcp://{host}:{port} (send READ)")
        click.echo(f"pen: serial {pen.serial}, seed {seed}, "
                   f"faults {faults or 'none'}, baud {baud or 'unpaced'}", err=True)
        click.echo("Ctrl-C to stop.", err=True)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if gauge is not None:
            gauge.close()
        if bridge is not None:
            bridge.close()
        pen.close()
        signal.signal(signal.SIGTERM, previous)
    click.echo("simulator stopped.", err=True)


def _listening(option: str, port: int, pen_port: int | None, make: Callable[[], T]) -> T:
    """`make()` (a server on 127.0.0.1:`port`), or a usage error naming the option and the
    port when it cannot listen there (the CLI's generic file-or-device line names neither)."""
    try:
        return make()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            by = " by --tcp" if port == pen_port else " (another `smp sim` or another server)"
            why = f"port {port} is in use{by}"
        elif exc.errno == errno.EACCES:
            why = f"port {port} needs privileges this user lacks (ports below 1024)"
        else:
            why = f"cannot listen on port {port}: {exc.strerror or exc}"
        raise click.BadParameter(f"{why}; choose another port, or 0 for any free port",
                                 param_hint=option) from None
