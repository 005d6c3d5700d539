"""`smp sessions export` and `smp sessions schema`."""

from __future__ import annotations

import contextlib
import errno
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click

from smpdevice.cli.interrupt import CTRL_C
from smpdevice.cli.sessions_common import (
    db_option,
    end_partial,
    existing_logs,
    filter_options,
    make_filter,
    nothing_recorded,
    nothing_yet,
    open_all,
    resolve_session,
)
from smpdevice.paths import refuse_record_output
from smpdevice.records.export import ExportFilter, jsonl_schema
from smpdevice.records.logset import export_all, sessions_of


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl: one JSON object a line; csv: a header and one row a pass.")
@click.option("--output", "-o", "output_path", default="-", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write, made private (0600) whatever the umask (default: "
                   "standard output). Never a record of the station (pass log, calibrations, "
                   "anchors, keys) nor any SQLite database: refused.")
@click.option("--identified", is_flag=True,
              help="Write real client references and technician names (default: "
                   "pseudonyms, stable per person on this installation).")
@db_option
@filter_options
def export(fmt: str, output_path: str, identified: bool, db: str | None, session_id: str | None,
           client: str | None, since: datetime | None, until: datetime | None) -> None:
    """Export passes, with their session's identity, as JSON lines or CSV.

    Pseudonymous by default; screening answers are never exported. CSV is safe to open in a
    spreadsheet (cells that would run as formulas are prefixed with '). `smp sessions
    schema` prints the JSON Schema of a JSONL line.

    \b
    Examples:
      smp sessions export --format csv --output passes.csv
      smp sessions export --format jsonl --client C-0042 --since 2025-01-01 | jq .outcome
    """
    # SIGTERM (a service manager) and SIGHUP (the terminal closed) as Ctrl-C: one line, exit
    # 130, and the temporary of -o FILE removed (it may name clients), never left behind.
    with CTRL_C.stop_signals():
        _export(fmt, output_path, identified, db, make_filter(session_id, client, since, until))


def _export(fmt: str, output_path: str, identified: bool, db: str | None,
            where: ExportFilter) -> None:
    if not output_path:  # "" is no file: it was taken for the current directory
        from smpdevice.checks import InvalidArgument

        raise InvalidArgument("--output is empty: give a file name, or - for standard output; "
                              "nothing was written")
    if output_path != "-":  # before anything opens it: `-o passlog.sqlite` would empty the log
        refuse_record_output(output_path, "--output", read=existing_logs(db))
    with open_all(db) as logs:
        if where.session is not None:  # one session, found as `smp sessions show` does: its
            where, holder = resolve_session(logs, where, sessions_of(logs))  # log alone is read
            logs = [log for log in logs if Path(log.path) == holder]
        # The rows are written with a stop ending them at once (no file left); the commit
        # (sync, rename onto the file) and the report are not: a stop landing once the file
        # is in place must not say "interrupted" of an export written whole.
        with CTRL_C.deferred():
            with _private_output(output_path) as output, CTRL_C.immediate():
                count = export_all(logs, fmt, output, identified=identified, where=where)
            CTRL_C.settle()  # written: the exit status is decided, a later stop changes nothing
    fresh = nothing_recorded(db)
    if fresh is not None:  # a new station: an empty export, no error (exit 0)
        click.echo(f"note: {nothing_yet(fresh)}", err=True)
    if output_path != "-":
        click.echo(f"exported {count} passes to {output_path}", err=True)
        if CTRL_C.requested:  # the stop came while the whole file was being put in place
            click.echo("note: a stop signal came as the export was saved: it was written "
                       "whole", err=True)
    end_partial()  # exit 3 when a log of the data directory could not be read


@contextlib.contextmanager
def _private_output(path: str) -> Iterator[TextIO]:
    """Standard output for "-", else the file, 0600 (exports name clients with --identified),
    written whole or not at all (`private_text_output`): a full disk never leaves a cut export
    under the name asked for, and the line says which file and that nothing was written."""
    from smpdevice.config import user_path
    from smpdevice.errors import SmpError
    from smpdevice.records.files import private_text_output

    if path == "-":
        yield sys.stdout
        return
    given = user_path(path)
    existed = given.exists()
    try:
        with private_text_output(given) as handle:
            yield handle
    except OSError as exc:
        left = "it is as it was" if existed else "no file was left there"
        todo = ("free space on that disk" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else
                "give a file in a directory you can write")
        raise SmpError(f"cannot write --output {path}: {exc.strerror or exc}; the export was "
                       f"not written ({left}). {todo.capitalize()} and run the command "
                       "again") from exc


@click.command()
def schema() -> None:
    """Print the JSON Schema of one line of `smp sessions export --format jsonl`.

    \b
    Example:
      smp sessions schema > pass-record.schema.json
    """
    click.echo(json.dumps(jsonl_schema(), indent=2))

