"""The `smp` command line. Each area registers its commands from a module of its own."""

from __future__ import annotations

import sys

import click

from smpdevice import __version__
from smpdevice.errors import SmpError


class _Group(click.Group):
    """Turns every SmpError into one clear line and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SmpError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smp")
@click.option("--log-level", default=None, metavar="LEVEL",
              help="debug, info, warning (default) or error; also SMP_LOG_LEVEL.")
@click.option("--log-json", is_flag=True, help="Log JSON lines (also SMP_LOG_FORMAT=json).")
def main(log_level: str | None, log_json: bool) -> None:
    """Drive, calibrate and simulate a rotary SMP pen.

    \b
    Start here:
      smp demo                      the whole system on the built-in simulator
      smp info --port pensim://     who a pen is, its firmware and hard limits
      smp protocol decode HEX       read a captured frame

    Every command takes --help. No hardware is needed: the port `pensim://` is a simulated pen.
    """
    from smpdevice.logs import configure

    configure(log_level, "json" if log_json else None)


def _register() -> None:
    from smpdevice.cli import device, protocol

    main.add_command(protocol.protocol)
    main.add_command(device.ports)
    main.add_command(device.info)
    main.add_command(device.diagram)

    from smpdevice.cli import calibrate as calibrate_cli

    main.add_command(calibrate_cli.calibrate)
    main.add_command(calibrate_cli.calibrations)
    from smpdevice.cli.sim import sim as sim_cli  # the simulator (issue 3)

    main.add_command(sim_cli)
    from smpdevice.cli.profile import profile as profile_cli  # profiles (issue 5)
    from smpdevice.cli.sessions import sessions as sessions_cli  # the pass log (issue 5)

    main.add_command(profile_cli)
    main.add_command(sessions_cli)
    from smpdevice.cli.monitor import monitor as monitor_cli  # live view (issue 7)

    main.add_command(monitor_cli)
    from smpdevice.cli.run import run as run_cli

    main.add_command(run_cli)
    from smpdevice.cli.demo import demo as demo_cli

    main.add_command(demo_cli)


_register()
