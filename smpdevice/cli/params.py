"""Option types that hold for every input, not only the listed ones.

click's FloatRange lets `nan` through (every comparison with NaN is false, so no bound
refuses it) and an open-ended IntRange lets through integers no store can hold. These refuse
both while the command line is parsed, before a pen moves (exit 2, one line).
"""

from __future__ import annotations

import math
from typing import Any

import click

# A count a person asks for (--limit): far above any real list, far below SQLite's 2**63.
MAX_COUNT = 1_000_000


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan (and inf, even where no bound would)."""

    name = "float"  # "'x' is not a valid float."

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number; give a number in the range "
                      f"{self._describe_range()}.", param, ctx)
        return number


def finite_float(minimum: float | None = None, maximum: float | None = None) -> FiniteFloatRange:
    return FiniteFloatRange(minimum, maximum)


def count(minimum: int = 1, maximum: int = MAX_COUNT) -> click.IntRange:
    """A bounded count: `--limit 99999999999999999999` is refused as an option, not later as
    a damaged database."""
    return click.IntRange(minimum, maximum)


def given_file(own: str) -> Any:
    """A click callback for a file option (--db, --calibrations, --envelope, --file): '' or
    blank, a script's unset variable (`--db "$BACKUP"`), is refused (exit 2) before anything
    opens, never taken as the option left out (the station's own file, `own`)."""

    def check(_ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and not str(value).strip():
            option = max(param.opts, key=len)
            from smpdevice.errors import SmpError

            raise SmpError(f"{option} {str(value)!r}: no file was given (an unset or empty "
                           f"variable?); nothing was opened. Give the file, or leave {option} "
                           f"out for {own}")
        return value

    return check


def given_pen(pen_serial: str | None, without: str) -> None:
    """`--pen ''` or blank (a script's unset variable) is refused by name (exit 2), never
    taken as no --pen nor as a serial; `without`: what leaving --pen out does."""
    if pen_serial is not None and not pen_serial.strip():
        from smpdevice.errors import SmpError

        raise SmpError(f"--pen {pen_serial!r}: no pen serial was given (an unset or empty "
                       "variable?). Give the pen's serial (`smp info --port PORT` shows it)"
                       f"{without}")


def given_port(value: str | None, refused: str = "") -> None:
    """`--port ''` or blank (a script's unset variable) is refused (exit 2), never taken as
    --port left out: that would pick SMP_PORT's, the config's or the built-in simulator's pen
    instead of the one meant (an E-stop key would then stop the wrong pen)."""
    if value is not None and not value.strip():
        from smpdevice.errors import SmpError

        raise SmpError(f"{refused}--port {value!r}: no pen was named (an unset or empty "
                       "variable?); nothing was opened. Give the pen's port (a device such as "
                       "/dev/ttyACM0, usb:SERIALNO, socket://HOST:PORT, or pensim:// for the "
                       "built-in simulator), or leave --port out for SMP_PORT or the station "
                       "config's `port`")


def env_service(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """The --service option's callback: an SMP_SERVICE that is blank (" ", a script's
    `export SMP_SERVICE="$X "`) is taken as unset, as an empty one is (README), for every
    command: never a service URL that wins over SMP_PORT (`smp estop` would then stop no pen).
    A blank `--service` typed is refused by name (`given_service`)."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source("service")
    if value is not None and not value.strip() and source is ParameterSource.ENVIRONMENT:
        return None
    return value


def given_service(ctx: click.Context) -> None:
    """A typed `--service ''` or blank (a script's unset variable) is refused (exit 2), never
    taken for "no --service": the command would go to SMP_PORT's pen, or check against the
    station's envelope instead of the service's, and say nothing."""
    from click.core import ParameterSource

    service = ctx.params.get("service")
    typed = ctx.get_parameter_source("service") is ParameterSource.COMMANDLINE
    if typed and service is not None and not service.strip():
        raise click.BadParameter(f"{service!r} is empty, so nothing was sent: give the URL of a "
                                 "running `smp serve` "
                                 "(ws://HOST:PORT/rpc or unix:///PATH), or leave --service out",
                                 param_hint="--service")
