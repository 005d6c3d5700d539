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
    from smpdevice.cli import (
        calibrate,
        demo,
        device,
        monitor,
        profile,
        protocol,
        run,
        sessions,
        sim,
    )

    for command in (
        demo.demo,
        device.ports,
        device.info,
        monitor.monitor,
        calibrate.calibrate,
        calibrate.calibrations,
        profile.profile,
        run.run,
        sessions.sessions,
        sim.sim,
        protocol.protocol,
        device.diagram,
    ):
        main.add_command(command)


_register()
