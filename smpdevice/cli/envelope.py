"""`smp envelope`: check a safety-envelope file and show the envelope in force."""

from __future__ import annotations

import json
import sys

import click

from smpdevice.cli.params import given_file, given_service
from smpdevice.envelope import (
    CAPS,
    InvalidEnvelope,
    envelope_record,
    load_envelope,
    station_envelope,
)
from smpdevice.loader import LoadError
from smpdevice.service.cli_client import service_option


@click.group()
def envelope() -> None:
    """Check safety-envelope files (per-zone limits) before a session uses them.

    \b
    Examples:
      smp envelope check clinic-envelope.yaml
      smp envelope show --file clinic-envelope.yaml
    """


@envelope.command()
@click.argument("file")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (on stdout).")
def check(file: str, as_json: bool) -> None:
    """Validate FILE (YAML or JSON): the strict loader's rules, every field's type, every limit
    finite and inside the absolute caps (docs/safety.md).

    Prints `ok: FILE ...` on stdout and exits 0, or one line per issue on stderr
    (`FILE: field.path = value: rule`) and exits 1.

    \b
    Example:
      smp envelope check clinic-envelope.yaml
    """
    try:
        zones = load_envelope(file)
    except (LoadError, InvalidEnvelope) as exc:
        # One line per issue, each starting with the file (and its line, when the loader knows it).
        lines = ([f"{file}: {i}" for i in exc.issues] if isinstance(exc, InvalidEnvelope)
                 else [str(exc)])
        if as_json:
            errors = ([i.as_dict() for i in exc.issues] if isinstance(exc, InvalidEnvelope)
                      else [{"path": "", "value": None, "rule": str(exc), "line": exc.line}])
            click.echo(json.dumps({"ok": False, "file": file, "errors": errors}, indent=2))
        else:
            n = len(lines)
            click.secho(f"{file}: {n} error{'s' if n != 1 else ''}", fg="red", err=True)
            for line in lines:
                click.echo(line, err=True)
        sys.exit(1)
    record = envelope_record(zones)
    if as_json:
        click.echo(json.dumps({"ok": True, "file": file, **record}, indent=2))
        return
    click.secho(f"ok: {file} ({len(zones)} zones: {', '.join(sorted(zones))}; at most "
                f"{zones.session.max_passes} passes and {zones.session.max_needle_s:g} s of "
                "needle per session)", fg="green")
    click.echo(f"envelope hash: {record['sha256']}")


@envelope.command()
@click.option("--file", "file", default=None, metavar="FILE",
              callback=given_file("the station's envelope"),
              help="Overrides to apply to the built-in zones. Default: $SMP_ENVELOPE, else "
                   "`envelope` in the station config (as `smp run`), else none.")
@service_option()
def show(file: str | None, service: str | None) -> None:
    """Print the envelope in force (zones, plan limits, hash) and the absolute caps as JSON.

    The envelope in force is the one `smp run` uses: --file, else SMP_ENVELOPE, else the
    station config's `envelope`, else the built-in zones; `file` and `source` say which.
    With --service (or SMP_SERVICE) and no --file, `smp run` goes through that `smp serve`:
    its zones are shown as the service reports them (`source` names it; its plan limits and
    hash are not reported by the service: null).

    \b
    Example:
      smp envelope show
    """
    given_service(click.get_current_context())  # `--service ""` is no "no service"
    caps = {name: {"min": low, "max": high} for name, (low, high) in CAPS.items()}
    if service and not file:  # the envelope `smp run` is held to is the service's own
        from smpdevice.cli.remote import _connect

        with _connect(service, "viewer") as svc:
            zones = svc.call("pen.identity")["zones"]
        click.echo(json.dumps({"sha256": None, "session": None, "zones": zones, "file": None,
                               "source": f"service {service}", "absolute_caps": caps},
                              indent=2))
        return
    if service:
        click.echo(f"note: `smp run` through the service at {service} is held to the "
                   f"service's envelope, not {file}", err=True)
    station = station_envelope(file)
    record = envelope_record(station.zones)
    click.echo(json.dumps({**record, "file": station.file, "source": station.source,
                           "absolute_caps": caps}, indent=2))

