"""`smp sessions sync`: push the log to a clinic chain's central PostgreSQL store."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING

import click

from smpdevice.cli.sessions_common import (
    db_option,
    existing_logs,
    nothing_recorded,
    nothing_yet,
    open_log,
    sentence,
)
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode
from smpdevice.records.logset import deleted_beside, missing_log
from smpdevice.records.model import PassLogError

if TYPE_CHECKING:
    from smpdevice.records.keys import PublicKey


@click.command()
@click.option("--to", "url", required=True, metavar="postgresql://...",
              help="The clinic chain's central PostgreSQL database.")
@db_option
def sync(url: str, db: str | None) -> None:
    """Push the log's new records to a clinic chain's central PostgreSQL store.

    Append-only and idempotent (records already there are not sent again), resumable (run it
    again after a cut connection). On the first sync the log and this installation's public
    key are registered. A local log that does not verify, or was rewritten, forked or rolled
    back, is refused (exit 1), naming the first record that differs; the other logs are still
    synced. The log is checked as `smp sessions verify` checks it (its anchors file too); a
    damaged file is not synced (exit 3), a log deleted while its anchors file is left is
    named `missing` (exit 1); a copy of a log beside it (a backup left there) is named
    `copied` (exit 1) and only the log readers read is pushed. Safe while a pen runs (reads
    only) and beside another sync of the same log. A station where nothing was recorded yet
    has nothing to sync (exit 0).

    \b
    Example:
      smp sessions sync --to postgresql://smp@db.clinic.example/smp
    """
    from smpdevice.records.central import CentralRefused
    from smpdevice.records.central import sync as push
    from smpdevice.records.sqlite import PassLog

    fresh = nothing_recorded(db)
    if fresh is not None:  # a new station: nothing to push is no error (exit 0), as for list
        click.echo(f"{nothing_yet(fresh)} Nothing to sync.")
        return
    key = _installation_key()
    left_out = refused = False
    paths = existing_logs(db)
    if db is None:  # a log deleted while its anchors file is left: named, as verify names it
        from smpdevice.paths import db_path

        paths += [p for p in deleted_beside(db_path()) if p not in paths]
        paths, refused = _read_once(paths)
    for path in paths:  # the station's log and each pen's own
        gone = missing_log(path)
        if gone is not None:  # its records are lost: a failed check (exit 1), never "fresh"
            click.secho(f"missing: {gone}", fg="red", err=True)
            refused = True
            continue
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
                click.echo(f"skipped {path}: it has no log id yet (being created, its "
                           "creation cut, or written before logs had one: schema 2); nothing "
                           "to sync until a writer opens it")
                continue
            try:
                result = push(log, url, key)
            except PassLogError as exc:  # damaged (quick_check): as a log that cannot be opened
                if db or len(paths) == 1:
                    raise
                click.secho(f"warning: {sentence(exc)} Not synced; the other logs are (check "
                            f"it: smp sessions verify --db {shlex.quote(str(path))})",
                            fg="yellow", err=True)
                left_out = True
                continue
            except CentralRefused as exc:
                if db or len(paths) == 1:
                    raise
                # A log refused (tampered, forked, rolled back) stops no other log's sync;
                # the exit status still says a check failed (1), as verify's does.
                click.secho(f"error: {path}: {sentence(exc)} The other logs are synced.",
                            fg="red", err=True)
                refused = True
                continue
        click.echo(f"synced log {result.log_id}: {result.sent} new records sent; the central "
                   f"store holds records 1..{result.central_head}"
                   + (" (log registered)" if result.registered else ""))
    if refused:
        sys.exit(ExitCode.CHECK_FAILED)
    if left_out:
        sys.exit(ExitCode.RECORD_ERROR)  # a log was not synced: never a silent success


def _read_once(paths: list) -> tuple[list, bool]:
    """(the logs to push, whether a copy was found) of the data directory's `paths`: the
    readers' rule (`logcopies.copies`, review 18h): a copy is named `copied:` (exit 1, as
    verify fails on it) and only the log readers read is pushed; both files of a log each
    written on after the copy are pushed (the central store refuses the second: a fork)."""
    from pathlib import Path

    from smpdevice.records.logcopies import unread_copies

    not_read, found = unread_copies([p for p in paths if missing_log(p) is None])
    for copy in found:
        click.secho(f"copied: {copy}", fg="red", err=True)
    return [p for p in paths if Path(p) not in not_read], bool(found)


def _installation_key() -> PublicKey:
    """This installation's public key (sync only reads: it never makes one). A machine
    without it did not write these logs: refused (exit 2), as `verify` refuses."""
    from smpdevice.records.keys import key_dir, load_public

    try:
        public = load_public()
    except OSError as exc:
        raise SmpError(f"cannot read the installation key in {key_dir()}: "
                       f"{exc.strerror or exc}") from None
    if public is None:
        raise SmpError(f"cannot sync: this machine has no installation key ({key_dir()}), so "
                       "the logs here cannot be checked before they are sent. Sync on the "
                       "installation that wrote them (as the OS user that runs `smp run`), or "
                       "set SMP_KEY_DIR to its key directory")
    return public
