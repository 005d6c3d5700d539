"""`smp sessions sync`: push the log to a clinic chain's central PostgreSQL store."""

from __future__ import annotations

import shlex
import sys

import click

from smpdevice.cli.sessions_common import db_option, existing_logs, open_log, sentence
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.passlog import PassLog


@click.command()
@click.option("--to", "url", required=True, metavar="postgresql://...",
              help="The clinic chain's central PostgreSQL database.")
@db_option
def sync(url: str, db: str | None) -> None:
    """Push the log's new records to a clinic chain's central PostgreSQL store.

    Append-only and idempotent (records already there are not sent again), resumable (run it
    again after a cut connection). On the first sync the log and this installation's public
    key are registered. A local log that was rewritten, forked or rolled back is refused,
    naming the first record that differs. Safe while a pen runs (reads only).

    \b
    Example:
      smp sessions sync --to postgresql://smp@db.clinic.example/smp
    """
    from smpdevice.records.central import sync as push
    from smpdevice.records.keys import InstallationKey

    key = InstallationKey.load_or_create()
    left_out = False
    paths = existing_logs(db)
    for path in paths:  # the station's log and each pen's own
        try:
            opened = open_log(str(path)) if db else PassLog(path, readonly=True)
        except SmpError as exc:
            if db or len(paths) == 1:
                raise
            # One damaged or stray file of the data directory stops no other log's sync.
            click.secho(f"warning: {sentence(exc)} Not synced; the other logs are (check it: smp "
                        f"sessions verify --db {shlex.quote(str(path))})", fg="yellow",
                        err=True)
            left_out = True
            continue
        with opened as log:
            if not log.log_id:  # being created: syncing a made-up id would stay for ever
                click.echo(f"skipped {path}: it has no log id yet (being created, or its "
                           "creation was cut); nothing to sync until its first session")
                continue
            result = push(log, url, key)
        click.echo(f"synced log {result.log_id}: {result.sent} new records sent; the central "
                   f"store holds records 1..{result.central_head}"
                   + (" (log registered)" if result.registered else ""))
    if left_out:
        sys.exit(ExitCode.RECORD_ERROR)  # a log was not synced: never a silent success

