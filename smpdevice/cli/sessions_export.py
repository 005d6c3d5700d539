"""`smp sessions export` and `smp sessions schema`."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click

from smpdevice.cli.sessions_common import db_option, filter_options, make_filter, open_all
from smpdevice.passlog import PassLog
from smpdevice.records.export import jsonl_schema


@click.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl: one JSON object a line; csv: a header and one row a pass.")
@click.option("--output", "-o", "output_path", default="-", metavar="FILE",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write, made private (0600) whatever the umask (default: "
                   "standard output).")
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
    where = make_filter(session_id, client, since, until)
    with open_all(db) as logs, _private_output(output_path) as output:
        if len(logs) == 1:
            count = logs[0].export(fmt, output, identified=identified,  # type: ignore[arg-type]
                                   where=where)
        else:
            count = _export_all(logs, fmt, output, identified, where)
    if output_path != "-":
        click.echo(f"exported {count} passes to {output_path}", err=True)


@contextlib.contextmanager
def _private_output(path: str) -> Iterator[TextIO]:
    """Standard output for "-", else the file, 0600: exports name clients (--identified)."""
    from smpdevice.errors import SmpError
    from smpdevice.records.files import open_private_text

    if path == "-":
        yield sys.stdout
        return
    try:
        handle = open_private_text(Path(path))
    except OSError as exc:
        raise SmpError(f"cannot write --output {path}: {exc.strerror or exc}; give a file in a "
                       "directory you can write") from exc
    with handle:
        yield handle


def _export_all(logs: list[PassLog], fmt: str, output, identified: bool, where) -> int:
    """Every log's passes, one after the other; a CSV keeps one header line."""
    count = 0
    for i, log in enumerate(logs):
        buffer = io.StringIO(newline="")
        count += log.export(fmt, buffer, identified=identified,  # type: ignore[arg-type]
                            where=where)
        text = buffer.getvalue()
        if fmt == "csv" and i > 0:
            text = text.split("\n", 1)[1] if "\n" in text else ""
        output.write(text)
    return count


@click.command()
def schema() -> None:
    """Print the JSON Schema of one line of `smp sessions export --format jsonl`.

    \b
    Example:
      smp sessions schema > pass-record.schema.json
    """
    click.echo(json.dumps(jsonl_schema(), indent=2))

