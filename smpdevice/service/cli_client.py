"""`--service URL` (or `SMP_SERVICE`) for `smp estop`, `smp clear` and `smp info` (and `run`,
`calibrate`, `monitor`): talk to a running `smp serve` instead of opening the pen's port (which
the service owns)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click

from smpdevice.checks import CLEAR_REASON_MIN_SEEN, visible_count
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode


class ServiceEstopNotConfirmed(SmpError):
    exit_code = ExitCode.LINK_LOST


class ServiceClearRefused(SmpError):
    """The pen refused to clear: the cause is still present (README: `smp clear`, exit 4)."""

    exit_code = ExitCode.FAULT


def service_option() -> Any:
    """--service URL, processed first so that --port need not be given with it. `--port`'s
    callback (`smpdevice.cli.device.one_target`) settles the two: a `--port` typed on the
    command line beats SMP_SERVICE, and beside a typed `--service` it is refused."""
    from smpdevice.cli.params import env_service

    return click.option(
        "--service", "service", envvar="SMP_SERVICE", default=None, metavar="URL",
        is_eager=True, expose_value=True, callback=env_service,  # a blank SMP_SERVICE: unset
        help="Talk to a running `smp serve` (ws://HOST:PORT/rpc or unix:///PATH) instead of "
             "the port. Default: $SMP_SERVICE, unless --port is given (not both).")


def _client(url: str, role: str, token: str | None = None) -> Any:
    from smpdevice.service.client import SyncServiceClient

    return SyncServiceClient.connect(url, role=role, name="smp", token=token)


def _estop_token() -> str | None:
    """The viewer token, also from a token file others can read (with a warning): the mode
    check guards the tokens, never the E-stop (review 14: it said "E-stop NOT sent", exit 6,
    while the pen ran on). None: the connection reads it again, and says what is wrong."""
    from smpdevice.paths import data_dir
    from smpdevice.service.auth import Role, TokenFileOpen, read_token

    try:
        return read_token(data_dir(), Role.VIEWER)
    except TokenFileOpen as exc:
        click.secho(f"warning: {str(exc).rstrip('.')}. The E-stop is sent all the same.",
                    fg="yellow", err=True)
        with contextlib.suppress(SmpError):
            return read_token(data_dir(), Role.VIEWER, others_may_read=True)
    except SmpError:
        pass
    return None


def estop(url: str) -> None:
    """Any role may E-stop: the viewer token is enough. Whatever stops the E-stop from being
    answered (no service, a wrong URL, an unreadable token file, a timeout) says "NOT sent"
    and exits 6: the user must learn that the pen may still be running."""
    serial = "?"
    try:
        with _client(url, "viewer", _estop_token()) as svc:
            answer = svc.estop()
            with contextlib.suppress(SmpError, KeyError, TypeError):  # the E-stop is done
                serial = svc.call("pen.identity")["identity"]["serial"]
    except SmpError as exc:
        raise ServiceEstopNotConfirmed(
            f"E-stop NOT sent: the service at {url} cannot be reached ({exc}). Use the pen's "
            "own stop or pull its power.") from None
    if not answer.get("confirmed"):
        raise ServiceEstopNotConfirmed(
            f"E-stop of pen {serial} latched by the service but NOT confirmed by the pen; the "
            "pen stops the needle by itself when its lease runs out. Check the cable.")
    click.echo(f"E-stop latched on pen {serial} (through the service at {url}): the needle is "
               f"stopped and retracted. When it is safe: smp clear --service {url}")


def clear(url: str, yes: bool, reason: str | None) -> None:
    """Clearing needs the technician role and a reason, which the service logs."""
    with _client(url, "technician") as svc:
        state = svc.call("pen.state")
        serial = svc.call("pen.identity")["identity"]["serial"]
        if state["state"] not in ("fault", "estop"):
            click.echo(f"Pen {serial} has nothing latched (state {state['state']}).")
            return
        click.echo(f"Pen {serial} has {state['state']} latched: {state['last_fault']}.")
        if not reason:
            if yes:
                raise SmpError("clearing through the service needs --reason TEXT (why it is "
                               "safe to clear; the service logs it)")
            reason = click.prompt("Why is it safe to clear? (logged)", default="",
                                  show_default=False)
        if visible_count(reason) < CLEAR_REASON_MIN_SEEN:  # the service's own count
            click.echo(f"Nothing cleared: a reason is required (at least "
                       f"{CLEAR_REASON_MIN_SEEN} visible characters).", err=True)
            raise SystemExit(ExitCode.CHECK_FAILED)
        if not yes:  # a reason is no consent: asked as at the pen's port
            from smpdevice.cli.safety import ask_to_clear

            ask_to_clear()
        from smpdevice.service.client import ServiceError

        try:
            svc.call("pen.clear_faults", reason=reason.strip())
        except ServiceError as exc:
            if (exc.data or {}).get("reason") != "CONDITION_ACTIVE":
                raise
            raise ServiceClearRefused(
                f"pen {serial} refused to clear: the cause is still present ({exc}). Nothing "
                "was cleared. Remove the cause (free the needle, seat the cartridge, let it "
                f"cool), then run again: smp clear --service {url}") from None
        click.echo(f"Cleared: pen {serial} is {svc.call('pen.state')['state']}. The needle "
                   "stays stopped until a session starts it.")


def info(url: str, as_json: bool) -> None:
    with _client(url, "viewer") as svc:
        ident = svc.call("pen.identity")
        state = svc.call("pen.state")
    data = {**(ident["identity"] or {}), "port": ident["port"], "service": url,
            "controller_state": state["state"], "driver": state["driver"],
            "simulated": ident["simulated"], "calibration": ident["calibration"],
            # why a stored calibration was not used at start (None from an older service)
            "calibration_problem": ident.get("calibration_problem"),
            # why the service never runs this pen (footswitch mode), None if it may
            "footswitch_refused": ident.get("footswitch_refused")}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Pen {data.get('serial')} on {data['port']} (through the service at {url})")
    click.echo(f"  firmware {data.get('firmware_version')}, protocol "
               f"v{data.get('protocol_version')}; state {data['controller_state']}; "
               f"driven by {data['driver'] or 'nobody'}")
    cal = data["calibration"]
    where = f"{cal['calibration_id']} until {cal['expires_at']}" if cal else "none"
    click.echo(f"  calibration: {where}")
    if cal is None and data["calibration_problem"]:
        click.echo(f"  calibration problem: {data['calibration_problem']}")
    if data["footswitch_refused"]:
        click.echo(f"  not run (reading, clearing and E-stop only): {data['footswitch_refused']}")
