"""`smp sessions sync`: push the log to a clinic chain's central PostgreSQL store."""

from __future__ import annotations

import click

from smpdevice.cli.sessions_common import db_option, existing_logs, open_log


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
    for path in existing_logs(db):  # the station's log and each pen's own
        with open_log(str(path)) as log:
            if not log.log_id:  # being created: syncing a made-up id would stay for ever
                click.echo(f"skipped {path}: it has no log id yet (being created, or its "
                           "creation was cut); nothing to sync until its first session")
                continue
            result = push(log, url, key)
        click.echo(f"synced log {result.log_id}: {result.sent} new records sent; the central "
                   f"store holds records 1..{result.central_head}"
                   + (" (log registered)" if result.registered else ""))

