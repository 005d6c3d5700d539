"""`smp estop` and `smp clear`: stop a pen at once, and release what it latched."""

from __future__ import annotations

import sys
from typing import Any

import click

from smpdevice.cli.device import pen_identity, port_option
from smpdevice.cli.interrupt import CTRL_C
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode, command
from smpdevice.service.cli_client import service_option


class EstopNotSent(SmpError):
    """The E-stop could not be delivered: the pen was not reachable."""

    exit_code = ExitCode.LINK_LOST


class ClearRefused(SmpError):
    """The pen refused to clear: the cause of a latched fault is still present."""

    exit_code = ExitCode.FAULT


@click.command()
@port_option(stop="E-stop NOT sent: ")
@service_option()
def estop(port: str, service: str | None) -> None:
    """E-stop a pen at once: the needle stops and retracts, and stays stopped until cleared.

    Connects (which already stops a needle left running), sends E-stop and reports whether the
    pen confirmed it. Exit 0 when it did; 6 when the pen cannot be reached (then use the pen's
    own stop or pull its power). Release it with `smp clear --port PORT`.

    A pen driven by `smp run` is not free to connect to: press Ctrl-C in that terminal, which
    stops the needle at once.

    The E-stop never depends on the station config: with --port it is sent even when the
    config (or SMP_FOOTSWITCH, ...) is broken, then a `warning:` line says what to fix.

    \b
    Example:
      smp estop --port /dev/ttyACM0
    """
    if service:  # a running `smp serve` owns the pen: E-stop through it (any role may)
        from smpdevice.service import cli_client

        return cli_client.estop(service)
    from smpdevice.cli.stop_settings import config_warning

    warning = config_warning("the E-stop went ahead")
    try:
        _estop(port)
    finally:  # said once the E-stop was sent (or not): it never waits on this
        if warning:
            click.secho(warning, fg="yellow", err=True)


def _estop(port: str) -> None:
    from smpdevice.config import DEFAULTS
    from smpdevice.control import PenController  # (a service's client needs none of it)

    unreachable = ("Use the pen's own stop or pull its power. If `smp run` drives this pen, "
                   "press Ctrl-C in its terminal: it stops the needle at once.")
    try:
        # The built-in footswitch mode, whatever the station's: it is sent only before a start,
        # and a `required` set for another pen must not keep the E-stop from this one.
        pen = PenController.connect(port, footswitch=DEFAULTS["footswitch"])
    except SmpError as exc:
        raise EstopNotSent(f"E-stop NOT sent: the pen on {port} cannot be reached ({exc}). "
                           + unreachable) from exc
    with pen:
        serial = pen_identity(pen).serial
        try:
            pen.estop()
        except SmpError as exc:
            raise EstopNotSent(f"E-stop of pen {serial} NOT confirmed: {_unconfirmed(pen, exc)}; "
                               "this command has ended, so nothing sends it again. The host "
                               "renews nothing, so the pen stops the needle by itself when its "
                               f"lease runs out (within {pen.lease_ms} ms). Check the cable. "
                               + unreachable) from exc
        click.echo(f"E-stop latched on pen {serial}: the needle is stopped and retracted. "
                   "When it is safe, release it: " + command("smp", "clear", "--port", port))


def _unconfirmed(pen: Any, exc: SmpError) -> str:
    """Why the pen did not confirm, in this command's words: the controller's own says the
    ESTOP "is still re-sent", true only while its process lives (this one exits now)."""
    from smpdevice.control import EStopUnconfirmed
    from smpdevice.link.wire import MAX_ATTEMPTS

    if not isinstance(exc, EStopUnconfirmed):
        return str(exc).strip().rstrip(".")
    link = pen.link
    if link is None or link.lost is not None:
        return "the link to the pen is down"
    return f"the pen did not answer its ESTOP ({MAX_ATTEMPTS} tries)"


@click.command()
@port_option()
@click.option("--yes", "-y", is_flag=True, help="Clear without asking (scripts).")
@service_option()
@click.option("--reason", default=None, metavar="TEXT",
              help="With --service: why it is safe to clear (the service logs it).")
def clear(port: str, yes: bool, service: str | None, reason: str | None) -> None:
    """Show a pen's latched faults or E-stop and clear them, once their cause is gone.

    Asks before clearing (or --yes). The pen refuses while a cause is still present (a jam, a
    missing cartridge, heat): then nothing is cleared and the command exits 4. Clearing never
    restarts the needle: the next session starts it explicitly.

    \b
    Exit status: 0 cleared (or nothing was latched), 1 declined, 4 the cause is still present.

    \b
    Example:
      smp clear --port /dev/ttyACM0
      smp clear --port /dev/ttyACM0 --yes
    """
    if service:  # through a running `smp serve`: technician token, reason logged
        from smpdevice.service import cli_client

        return cli_client.clear(service, yes, reason)
    from firmware_protocol.codes import NackReason
    from smpdevice.config import DEFAULTS
    from smpdevice.control import PenController, State
    from smpdevice.link import CommandRefused

    # The built-in footswitch mode, as `smp estop`: clearing never runs the needle, so a
    # station's `required` must not keep a pen without a pedal from being cleared.
    with PenController.connect(port, footswitch=DEFAULTS["footswitch"]) as pen:
        serial = pen_identity(pen).serial
        if pen.state not in (State.FAULT, State.ESTOP):
            click.echo(f"Pen {serial} on {port} has nothing latched (state {pen.state.value}).")
            return
        t = pen.telemetry
        names = ", ".join(t.faults.names) if t is not None and t.faults else "none"
        what = "an E-stop" if pen.state is State.ESTOP else "a fault"
        click.echo(f"Pen {serial} on {port} has {what} latched: {pen.last_fault}.")
        click.echo(f"  fault flags: {names}")
        if not yes:
            ask_to_clear()
        try:
            pen.clear_faults()
        except CommandRefused as exc:
            if exc.reason is not NackReason.CONDITION_ACTIVE:
                raise
            raise ClearRefused(
                f"pen {serial} refused to clear: the cause is still present ({exc}). Nothing "
                "was cleared. Remove the cause (free the needle, seat the cartridge, let it "
                "cool), then run again: " + command("smp", "clear", "--port", port)
            ) from exc
        click.echo(f"Cleared: pen {serial} is {pen.state.value}. The needle stays stopped until "
                   "a session starts it.")


def ask_to_clear() -> None:
    """The technician's yes before a clear, at the pen or through a service (`--yes` skips
    it); no (or no answer: end of input) is "Nothing cleared.", exit 1."""
    try:
        with CTRL_C.immediate():
            agreed = click.confirm("Clear it? The needle stays stopped; nothing restarts by "
                                   "itself", default=False)
    except click.exceptions.Abort:
        if CTRL_C.requested:
            raise
        agreed = False  # no answer (end of input): pass --yes in scripts
    if not agreed:
        click.echo("Nothing cleared.", err=True)
        sys.exit(ExitCode.CHECK_FAILED)
