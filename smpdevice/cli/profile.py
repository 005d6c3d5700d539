"""`smp profile`: check treatment profiles and print their JSON Schema."""

from __future__ import annotations

import json
import sys

import click

from smpdevice.cli.params import given_file, given_service
from smpdevice.envelope import envelope_record, station_envelope
from smpdevice.service.cli_client import service_option
from smpdevice.sessions.profile_checks import playable_issues
from smpdevice.sessions.profiles import (
    ProfileError,
    load_profile,
    profile_hash,
    profile_json_schema,
)


@click.group()
def profile() -> None:
    """Check treatment profiles before they reach a pen.

    \b
    Examples:
      smp profile check examples/session1_base_density.yaml
      smp profile check my.yaml --envelope clinic-envelope.yaml --json
      smp profile schema > treatment-profile.schema.json
    """


@profile.command()
@click.argument("file")  # the strict loader says what is wrong with it, in one line
@click.option("--envelope", "envelope_file", type=click.Path(dir_okay=False), default=None,
              callback=given_file("the station's envelope"),
              help="YAML/JSON overrides of the per-zone safety envelope. Default: "
                   "$SMP_ENVELOPE, else `envelope` in the station config (as `smp run`), "
                   "else built in.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@service_option()
def check(file: str, envelope_file: str | None, as_json: bool, service: str | None) -> None:
    """Validate FILE (YAML or JSON) against the schema and each zone's safety envelope.

    Prints every error on stderr, one per line, as `FILE: field.path = value: rule`, and exits
    with status 1 when there is any (also a profile with no plan of passes, which `smp run`
    refuses); prints `ok: ...` on stdout and exits 0 when the profile is safe to play. The
    file is read by the strict loader (docs/integration.md, "Files"). The envelope is the one
    `smp run` uses: --envelope, else SMP_ENVELOPE, else the station config's; with --service
    (or SMP_SERVICE), as `smp run` then, the service checks it against its own envelope
    narrowed to its pen's limits (--envelope is refused beside it, exit 2).

    \b
    Example:
      $ smp profile check examples/session1_base_density.yaml
      ok: examples/session1_base_density.yaml (base_density, 3 zones, 4 planned passes)
    """
    given_service(click.get_current_context())  # `--service ""` is no "no service"
    if service:  # `smp run` goes through the service, held to its envelope: so is this
        from smpdevice.cli.profile_remote import check_through_service

        check_through_service(service, file, envelope_file, as_json)
        return
    station = station_envelope(envelope_file)  # what `smp run` will check against
    in_force = {"file": station.file, "source": station.source,
                "sha256": envelope_record(station.zones)["sha256"]}
    try:
        prof = load_profile(file, station.zones)
        unplayable = playable_issues(prof.plan)  # what `smp run` refuses, refused here too
        if unplayable:
            raise ProfileError(unplayable, file)
    except ProfileError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "file": file, "envelope": in_force,
                                   "errors": [i.as_dict() for i in exc.issues]}, indent=2))
        else:
            n = len(exc.issues)
            against = f" (checked against {station.describe()})" if station.file else ""
            click.secho(f"{file}: {n} error{'s' if n != 1 else ''}{against}", fg="red",
                        err=True)
            for issue in exc.issues:  # errors on stderr, results on stdout
                click.echo(f"{file}: {issue}", err=True)
        sys.exit(1)
    digest = profile_hash(prof)
    if as_json:
        click.echo(json.dumps({"ok": True, "file": file, "profile_hash": digest,
                               "session_kind": prof.session_kind.value,
                               "zones": sorted(prof.zones), "planned_passes": len(prof.plan),
                               "envelope": in_force}, indent=2))
    else:
        click.secho(f"ok: {file} ({prof.session_kind.value}, {len(prof.zones)} zones, "
                    f"{len(prof.plan)} planned passes)", fg="green")
        click.echo(f"profile hash: {digest}")
        click.echo(f"checked against {station.describe()}")


@profile.command()
@click.option("--indent", type=click.IntRange(0, 16), default=2, show_default=True,
              help="JSON indentation (0-16 spaces).")
def schema(indent: int) -> None:
    """Print the JSON Schema of a treatment profile (for session software in other languages).

    \b
    Example:
      smp profile schema > treatment-profile.schema.json
    """
    click.echo(json.dumps(profile_json_schema(), indent=indent))
