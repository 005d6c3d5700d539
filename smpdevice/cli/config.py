"""`smp config show` and `smp config check`: the station config file (smpdevice.config)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from smpdevice.config import (
    DEFAULTS,
    SETTINGS,
    ConfigError,
    Setting,
    found_config_path,
    load_config,
    setting,
)
from smpdevice.outcomes import ExitCode

NO_HOME = ("no config file (this user has no home directory; set SMP_CONFIG to use one): "
           "the environment variables and built-in defaults apply")
# The group's options that are settings (`smp --log-level debug config show`).
GROUP_OPTIONS = {"log_level": "--log-level"}

EXAMPLE = """\
port = "/dev/ttyACM0"        # or "usb:A1B2C3", "socket://127.0.0.1:7000", "pensim://"
technician = "ana"
data_dir = "~/smp-data"      # pass log and calibrations
envelope = "envelope.yaml"   # zone limits (relative paths: to this file's folder)
footswitch = "required"      # required | optional | off
log_level = "warning"        # debug | info | warning | error
"""


@click.group()
def config() -> None:
    """The station config file: this station's defaults (port, technician, data directory,
    envelope file, footswitch mode, log level).

    Precedence, for every setting: command-line option > environment variable > config file >
    built-in default. The file is TOML at $SMP_CONFIG, else
    $XDG_CONFIG_HOME/smpdevice/config.toml (normally ~/.config/smpdevice/config.toml).

    \b
    Examples:
      smp config show
      smp config check
    """


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def show(as_json: bool) -> None:
    """Where the config file is, and each setting's value and where it comes from.

    \b
    Example:
      smp config show
      SMP_PORT=pensim:// smp config show --json
    """
    path = found_config_path()
    typed = click.get_current_context().find_root().params
    rows, problem = [], ""
    for name, (env_name, _, _) in SETTINGS.items():
        option = typed.get(name) if name in GROUP_OPTIONS else None
        try:
            s = setting(name, option)
            if option is not None:  # the command line wins: say which option
                s = Setting(name, s.value, f"option {GROUP_OPTIONS[name]}")
        except ConfigError as exc:
            problem = str(exc)
            try:
                s = setting(name, strict=False)
            except ConfigError:
                s = Setting(name, None, f"invalid environment {env_name}")
        rows.append({"setting": name, "value": s.value, "source": s.source, "env": env_name})
    exists = path is not None and path.exists()
    if as_json:
        click.echo(json.dumps({"path": None if path is None else str(path), "exists": exists,
                               "settings": rows}, indent=2))
    else:
        if path is None:
            click.echo(f"Station config: {NO_HOME}")
        else:
            click.echo(f"Station config: {path} ({'found' if exists else 'not found'}; "
                       "override the path with SMP_CONFIG)")
        click.echo("Precedence: command-line option > environment variable > config file > "
                   "built-in default.")
        click.echo("")
        click.echo(f"{'setting':12}  {'value':32}  {'from':s}")
        for r in rows:
            value = "-" if r["value"] is None else str(r["value"])
            click.echo(f"{r['setting']:12}  {value:32}  {r['source']}  (env {r['env']})")
        if path is not None and not exists:
            click.echo("")
            click.echo(f"To set this station's defaults, write {path}, for example:")
            click.echo(EXAMPLE, nl=False)
    if problem:
        click.secho(f"error: {problem}", fg="red", err=True)
        sys.exit(ExitCode.CHECK_FAILED)


@config.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def check(file: Path | None) -> None:
    """Check the config file strictly: unknown keys, types, choices, size. One line per issue
    on stderr and exit 1 when anything is wrong; `ok` and exit 0 otherwise.

    FILE defaults to the station's config file ($SMP_CONFIG or the per-user one).

    \b
    Example:
      smp config check
      smp config check ./station.toml
    """
    path = file if file is not None else found_config_path()
    if path is None:
        click.echo(f"ok: {NO_HOME}.")
        return
    if not path.exists():
        if file is not None:
            click.secho(f"error: {path}: no such file", fg="red", err=True)
            sys.exit(ExitCode.USER_ERROR)
        click.echo(f"ok: no config file at {path}; the built-in defaults apply "
                   f"(footswitch {DEFAULTS['footswitch']}, log level {DEFAULTS['log_level']}, "
                   "no port: choose one with --port or SMP_PORT).")
        return
    try:
        values = load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            click.secho(f"{path}: {issue}", fg="red", err=True)
        sys.exit(exc.exit_code)
    issues = []
    if "envelope" in values:
        issues += _envelope_issues(values["envelope"])
    for issue in issues:
        click.secho(f"{path}: {issue}", fg="red", err=True)
    if issues:
        sys.exit(ExitCode.CHECK_FAILED)
    click.echo(f"ok: {path} ({len(values)} setting{'s' if len(values) != 1 else ''}: "
               f"{', '.join(values) or 'none'})")


def _envelope_issues(path: str) -> list[str]:
    """The envelope file the config names, read by the envelope's own strict loader."""
    from smpdevice.envelope import load_envelope
    from smpdevice.errors import SmpError

    if not Path(path).is_file():
        return [f"envelope: no such file {path}"]
    try:
        load_envelope(path)
    except SmpError as exc:
        return [f"envelope {path}: " + line.strip() for line in str(exc).splitlines()
                if line.strip()]
    return []
