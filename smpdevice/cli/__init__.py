"""The `smp` command line. Each area registers its commands from a module of its own."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from smpdevice import __version__
from smpdevice.cli.interrupt import CTRL_C
from smpdevice.config import LOG_LEVELS
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode


def exit_interrupted(line: str) -> NoReturn:
    """The one line Ctrl-C gets, then exit 130."""
    click.secho(f"interrupted: {line}", fg="red", err=True)
    sys.exit(ExitCode.INTERRUPTED)


class _Group(click.Group):
    """Turns every SmpError into one clear line and a non-zero exit, never a traceback, and
    Ctrl-C into one line and exit 130."""

    def main(self, *args, **kwargs):
        # Ctrl-C while the arguments are parsed is held until invoke() can answer it.
        with CTRL_C.installed(), CTRL_C.deferred():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        try:
            with CTRL_C.immediate():
                return super().invoke(ctx)
        except SmpError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            exit_interrupted("the command stopped before finishing.")
        except click.exceptions.Abort:
            if CTRL_C.requested:  # a prompt turned Ctrl-C into Abort
                exit_interrupted("the command stopped before finishing.")
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smp")
@click.option("--log-level", default=None, type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="How much is logged to stderr (the detail log smp.log in the data directory "
                   "keeps info and up). Default: SMP_LOG_LEVEL, else log_level in "
                   "the station config, else warning.")
@click.option("--log-json", is_flag=True, help="Log JSON lines (also SMP_LOG_FORMAT=json).")
def main(log_level: str | None, log_json: bool) -> None:
    """Drive, calibrate and simulate a rotary SMP pen.

    \b
    Start here:
      smp demo                      the whole system on the built-in simulator
      smp info --port pensim://     who a pen is, its firmware and hard limits
      smp protocol decode HEX       read a captured frame
      smp config show               this station's settings and where each comes from

    Every command takes --help. No hardware is needed: the port `pensim://` is a simulated pen.
    """
    from smpdevice.config import setting
    from smpdevice.logs import configure

    # A broken config file must not stop `smp config check` from saying what is wrong.
    configure(setting("log_level", log_level, strict=False).value,
              "json" if log_json else None, detail_log=True)


def _register() -> None:
    from smpdevice.cli import (
        calibrate,
        config,
        demo,
        device,
        envelope,
        keys,
        monitor,
        profile,
        protocol,
        run,
        safety,
        sessions,
        sim,
    )

    for command in (
        demo.demo,
        device.ports,
        device.info,
        safety.estop,
        safety.clear,
        monitor.monitor,
        calibrate.calibrate,
        calibrate.calibrations,
        profile.profile,
        envelope.envelope,
        run.run,
        sessions.sessions,
        keys.keys,
        sim.sim,
        protocol.protocol,
        config.config,
        device.diagram,
    ):
        main.add_command(command)
    from smpdevice.service.command import serve  # `smp serve` (issue 14, G)

    main.add_command(serve)


_register()
