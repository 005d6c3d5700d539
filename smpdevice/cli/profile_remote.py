"""`smp profile check` with --service URL (or SMP_SERVICE): `smp run` then goes through that
`smp serve` and is held to its envelope (its `--envelope`, else its station's), narrowed to its
pen's limits, so the check is the service's own `session.check` (review 16: it said ok against
the built-in zones for a profile the run then refused)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from smpdevice.errors import SmpError
from smpdevice.issues import Issue
from smpdevice.loader import LoadError, load_file
from smpdevice.sessions.profile_checks import playable_issues


def check_through_service(url: str, file: str, envelope_file: str | None,
                          as_json: bool) -> None:
    """As the local check (same lines, same exit codes), the profile checked by the service."""
    from smpdevice.cli.remote import _connect
    from smpdevice.sessions.profiles import TreatmentProfile, profile_hash

    if envelope_file:
        raise SmpError(f"--envelope {envelope_file} cannot be used with --service: `smp run` "
                       "through the service is held to the service's envelope; leave it out "
                       "(or check without --service, e.g. SMP_SERVICE= smp profile check ...)")
    try:
        data = load_file(file)  # the strict loader, as the local check: same errors
    except LoadError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        _refused(file, [Issue("", file, f"{where}{exc.problem}; {exc.hint}", missing=True)],
                 url, None, as_json)
        return
    from smpdevice.sessions.profiles import ProfileError

    try:
        sent = sendable(data, file)
    except ProfileError as exc:
        _refused(file, list(exc.issues), url, None, as_json)
        return
    with _connect(url, "viewer") as svc:
        serial = ((svc.call("pen.identity").get("identity") or {}).get("serial")) or "?"
        checked = svc.call("session.check", **sent)
    if not checked["ok"]:
        _refused(file, [Issue(i.get("path", ""), i.get("value"), i.get("rule", ""),
                              missing=i.get("value") is None) for i in checked["issues"]],
                 url, serial, as_json)
        return
    if not checked["passes"]:  # what `smp run` refuses besides, refused here too
        _refused(file, playable_issues([]), url, serial, as_json)
        return
    digest = profile_hash(TreatmentProfile.model_validate(data))
    zones, planned = checked["zones"], len(checked["passes"])
    if as_json:
        click.echo(json.dumps({"ok": True, "file": file, "profile_hash": digest,
                               "session_kind": checked["session_kind"],
                               "zones": sorted(zones), "planned_passes": planned,
                               "envelope": _in_force(url, serial)}, indent=2))
        return
    click.secho(f"ok: {file} ({checked['session_kind']}, {len(zones)} zones, {planned} "
                "planned passes)", fg="green")
    click.echo(f"profile hash: {digest}")
    click.echo(f"checked against {_described(url, serial)}")


def as_sent(data: dict[str, Any]) -> dict[str, str]:
    """A profile read here by the strict loader (`load_file`: regular files only, `.toml` as
    TOML, its caps), as a service's `session.check`/`session.run` take it: the parsed data as
    JSON (plain values, finite numbers), so the service judges what the local check read,
    never the file's text again in another format. The service's own caps still hold."""
    return {"profile": json.dumps(data, separators=(",", ":")), "format": "json"}


def read_for_service(path: str) -> dict[str, str]:
    """`as_sent` of the profile at `path`; what the strict loader refuses is a ProfileError,
    as `load_profile` says it for a local `smp run` (exit 1)."""
    from smpdevice.sessions.profiles import ProfileError, ProfileIssue

    try:
        data = load_file(path)
    except LoadError as exc:
        where = f"line {exc.line}: " if exc.line is not None else ""
        raise ProfileError([ProfileIssue("", path, f"{where}{exc.problem}; {exc.hint}",
                                         missing=True)], path) from None
    return sendable(data, path)


def sendable(data: Any, path: str) -> dict[str, str]:
    """`as_sent(data)`; a value JSON has no word for (a TOML date or time) is a ProfileError
    said as the local check says it (`client_ref = ...: is not text`), never a traceback."""
    from smpdevice.sessions.profiles import ProfileError, ProfileIssue, parse_profile

    try:
        return as_sent(data)
    except (TypeError, ValueError):
        parse_profile(data, source=path)  # raises the local check's own lines
        raise ProfileError([ProfileIssue("", path, "holds a value that is neither text, a "
                                         "number nor a list (a date?)", missing=True)],
                           path) from None


def _in_force(url: str, serial: str | None) -> dict[str, Any]:
    return {"file": None, "source": f"service {url}", "service": url, "pen_serial": serial}


def _described(url: str, serial: str | None) -> str:
    pen = f", narrowed to pen {serial}'s limits" if serial else ""
    return (f"the envelope of the service at {url} (its `smp serve --envelope`, else its "
            f"SMP_ENVELOPE or station config, else the built-in zones){pen}")


def _refused(file: str, issues: list[Issue], url: str, serial: str | None,
             as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "file": file, "envelope": _in_force(url, serial),
                               "errors": [i.as_dict() for i in issues]}, indent=2))
    else:
        n = len(issues)
        click.secho(f"{file}: {n} error{'s' if n != 1 else ''} (checked against "
                    f"{_described(url, serial)})", fg="red", err=True)
        for issue in issues:  # errors on stderr, results on stdout
            click.echo(f"{file}: {issue}", err=True)
    sys.exit(1)
