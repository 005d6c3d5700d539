"""`smp ports`, `smp info`, `smp diagram`: find a pen, ask who it is, draw the controller."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource
from rich.table import Table

from smpdevice.cli.console import cli_console
from smpdevice.cli.params import given_port, given_service
from smpdevice.errors import SmpError
from smpdevice.service.cli_client import service_option
from smpdevice.transport import DEFAULT_PORT, available_ports

if TYPE_CHECKING:  # the controller loads lazily, per command
    from smpdevice.control import PenController
    from smpdevice.control.pen import PenIdentity
    from smpdevice.link.wire import Link

PORT_HELP = (
    "Where the pen is: a device (/dev/ttyACM0), usb:SERIALNO (found by USB serial number), "
    "socket://HOST:PORT (a simulator over TCP) or pensim:// (a simulated pen in this process)."
)


def pen_identity(pen: PenController) -> PenIdentity:
    """The IDENTIFY of a connected pen (`connect()` sets it)."""
    from smpdevice.control.pen import connected

    return connected(pen.identity, pen.port_url)


def pen_link(pen: PenController) -> Link:
    """The link of a connected pen (`connect()` opens it)."""
    from smpdevice.control.pen import NotConnected

    if pen.link is None:
        raise NotConnected(pen.port_url)
    return pen.link


def resolve_port(option: str | None, fallback: str | None = None) -> str:
    """--port, else SMP_PORT, else `port` in the station config, else `fallback`; never the
    simulator unless one of them names it."""
    from smpdevice.config import setting

    chosen = setting("port", option).value or fallback
    if not chosen:
        raise SmpError(no_pen_chosen())
    return chosen


def no_pen_chosen() -> str:
    """What to do when neither --port, SMP_PORT nor the config names a pen."""
    from smpdevice.config import config_path

    return ("no pen chosen: pass --port (a device such as /dev/ttyACM0, usb:SERIALNO, "
            "socket://HOST:PORT, or pensim:// for the built-in simulator), or set SMP_PORT, or "
            f"set `port` in the station config {config_path()} (see: smp config show). The "
            "simulator is only used when you choose it.")


def one_target(ctx: click.Context, port: str | None) -> bool:
    """Whether the command talks to a service (`--service`, processed first) rather than the
    port. A `--port` typed on the command line beats SMP_SERVICE from the environment (the
    README's precedence: an E-stop goes to the pen the user named, never elsewhere), and is
    refused beside a `--service` typed too: two targets, and no guess which one is meant."""
    service = ctx.params.get("service")
    typed = ctx.get_parameter_source("service") is ParameterSource.COMMANDLINE
    # a script's unset variable: never taken for "no --service" (the E-stop would go to
    # SMP_PORT's pen, not the served one)
    given_service(ctx)
    if not service:
        return False
    if port is None or ctx.get_parameter_source("port") is not ParameterSource.COMMANDLINE:
        return True  # SMP_PORT and the config's `port` yield to any --service/SMP_SERVICE
    if typed:
        raise SmpError(f"--port {port} and --service {service} name two pens: give one of "
                       "them (--port: the pen on that port; --service: the pen of that "
                       "`smp serve`)")
    ctx.params["service"] = None  # SMP_SERVICE from the environment yields to --port
    return False


def port_option(fallback: str | None = None, *, stop: str | None = None):
    """--port PORT; without it: SMP_PORT, the station config's `port`, then `fallback`
    (None: the command refuses to guess). `stop`: the command is a safety stop (`smp estop`,
    the monitor's E-stop key) and a broken config never keeps it from the pen
    (cli/stop_settings.py); `stop` starts a refusal's line ("E-stop NOT sent: ")."""
    then = f"else {fallback}" if fallback else "no default: choose one"

    def resolve(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        given_port(value, stop or "")  # `--port ""` is no pen, never "the default pen"
        if one_target(ctx, value):  # `--service URL`: the service owns the port (G)
            return ""
        if stop is not None:
            from smpdevice.cli.stop_settings import stop_port

            return stop_port(value, fallback, stop)
        return resolve_port(value, fallback)

    return click.option(
        "--port", "-p", default=None, callback=resolve, metavar="PORT",
        help=f"{PORT_HELP} Default: $SMP_PORT, else `port` in the station config, {then}.",
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ports(as_json: bool) -> None:
    """List serial ports with their USB identity.

    \b
    Example:
      smp ports
      smp info --port usb:A1B2C3     # the pen with USB serial A1B2C3, wherever it is
    """
    found = available_ports()
    if as_json:
        click.echo(json.dumps([p.to_dict() for p in found], indent=2))
        return
    if not found:
        click.echo("No serial ports found. Without hardware, use --port pensim:// (simulator).")
        return
    table = Table("device", "VID:PID", "serial number", "description")
    for p in found:
        vidpid = f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else "-"
        table.add_row(p.device, vidpid, p.serial_number or "-", p.description)
    cli_console().print(table)


@click.command()
@port_option(fallback=DEFAULT_PORT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@service_option()
def info(port: str, as_json: bool, service: str | None) -> None:
    """Connect, run the handshake and print the pen's identity, firmware, limits and state.

    The pen is left as it was found, except that a running needle is stopped (the host never
    leaves a needle running it does not drive).

    \b
    Examples:
      smp info                               # the built-in simulator
      smp info --port /dev/ttyACM0 --json
      smp info --port socket://127.0.0.1:7000
    """
    if service:
        from smpdevice.service import cli_client

        return cli_client.info(service, as_json)
    from smpdevice.config import DEFAULTS
    from smpdevice.control import PenController

    # The built-in footswitch mode, as `smp estop` and the monitor: reading a pen never runs
    # the needle, so the station's `required` must not keep a technician from reading one
    # without a pedal (what would run it, arm/start/run/calibrate, still refuses it).
    with PenController.connect(port, footswitch=DEFAULTS["footswitch"]) as pen:
        ident = pen_identity(pen)
        t = pen.telemetry
        data = ident.to_dict()
        data["port"] = port
        data["controller_state"] = pen.state.value
        if t is not None:
            data["pen_state"] = t.state.name
            data["faults"] = t.faults.names
            data["cartridge_present"] = t.cartridge_present
            data["temp_c"] = t.temp_c
        if as_json:
            click.echo(json.dumps(data, indent=2))
            return
        lim = ident.limits
        console = cli_console()
        console.print(f"[bold]Pen {ident.serial}[/bold] on {port}")
        console.print(f"  firmware {ident.firmware_version}, protocol v{ident.protocol_version}, "
                      f"schema {data['schema_hash']}")
        console.print(f"  capabilities: {', '.join(data['capabilities']) or 'none'}")
        if "FOOTSWITCH" not in data["capabilities"] and _station_footswitch() == "required":
            console.print("  [yellow]no footswitch: this station's footswitch = \"required\" "
                          "refuses to run its needle (arm, start, run, calibrate)[/yellow]")
        console.print(f"  state: {data.get('pen_state', '?')} (controller {pen.state.value}); "
                      f"faults: {', '.join(data.get('faults', [])) or 'none'}")
        table = Table("hard limit", "min", "max", title="Hard limits (firmware clamp)")
        table.add_row("actuator depth (mm)", f"{lim.depth_min_mm:g}", f"{lim.depth_max_mm:g}")
        table.add_row("speed (Hz)", f"{lim.speed_min_hz:g}", f"{lim.speed_max_hz:g}")
        table.add_row("duty (%)", f"{lim.duty_min_pct:g}", f"{lim.duty_max_pct:g}")
        table.add_row("pulse period (ms)", f"{lim.period_min_ms:g}", f"{lim.period_max_ms:g}")
        table.add_row("motor current (A)", "", f"{lim.current_max_a:g}")
        table.add_row("temperature (°C)", "", f"{lim.temp_max_c:g}")
        table.add_row("lease (ms)", "", str(lim.lease_max_ms))
        console.print(table)


@click.command()
def diagram() -> None:
    """Print the controller's state diagram (Mermaid), generated from the state machine.

    \b
    Example:
      smp diagram > docs/state-diagram.mmd
    """
    from smpdevice.control.diagram import state_diagram_mermaid

    click.echo(state_diagram_mermaid(), nl=False)


def _station_footswitch() -> str | None:
    """The station's footswitch mode; None when its setting cannot be read (info goes on)."""
    from smpdevice.control.footswitch import footswitch_setting
    from smpdevice.errors import SmpError

    try:
        return footswitch_setting(None)
    except SmpError:
        return None
