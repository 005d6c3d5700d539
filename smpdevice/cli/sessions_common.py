"""What the `smp sessions` commands share: the --db option, opening every log read-only, the
filters."""

from __future__ import annotations

import contextlib
import shlex
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from smpdevice.cli.params import given_file
from smpdevice.records.export import ExportFilter

# The pass log's modules are imported when a log is opened: a station with nothing recorded,
# and every --help, never load them (issue 13: start-up).
if TYPE_CHECKING:
    from smpdevice.records.sqlite import PassLog

DB_HELP = ("Pass-log file. Default: every pass log of the data directory, read as one: "
           "passlog.sqlite, each pen's passlog-<serial>.sqlite (two chairs) and any other "
           "file there that is a pass log (smp run --db <dir>/chair2.sqlite), in "
           "$SMP_DATA_DIR, else ~/.local/share/smpdevice.")


def db_option(fn):
    return click.option("--db", "db", type=click.Path(dir_okay=False), default=None,
                        callback=given_file("every log of the data directory"),
                        help=DB_HELP)(fn)


def open_log(db: str | None) -> PassLog:
    # Read-only: never competes with a running controller and never "recovers" its live pass.
    from smpdevice.records.sqlite import PassLog

    return PassLog.open(db, readonly=True)


def existing_logs(db: str | None) -> list[Path]:
    """--db alone, else every pass log of the data directory (`logset.logs_beside`, the one
    finder: by content, whatever the name, `smp run --db <dir>/chair2.sqlite` too): the
    station's (even if absent when it is the only one: its absence is then reported) first."""
    from smpdevice.paths import pass_log_paths
    from smpdevice.records.logset import existing

    return existing(pass_log_paths(db), keep_missing_station=True)


_LEFT_OUT = "smp.logs_left_out"  # click's ctx.meta: the logs of this command not read


def nothing_recorded(db: str | None) -> Path | None:
    """The station's log path when nothing was recorded at this station yet: no --db, a data
    directory with no log of any kind and no anchors file saying one existed (a deleted log, or
    no data directory at all, stays an error). None otherwise. A fresh station is no read
    failure (exit 0, not 3)."""
    import os

    from smpdevice.records.logset import deleted_beside

    if db is not None:  # a file named on purpose: its absence is reported
        return None
    paths = existing_logs(None)
    station = paths[0]
    if len(paths) != 1 or os.path.lexists(station) or deleted_beside(station):
        return None  # a log there, or one deleted (its own or a pen's anchors file left)
    if not station.parent.is_dir():  # no data directory: a drive not mounted, say: an error
        return None
    return station


def nothing_yet(station: Path) -> str:
    """The line saying a fresh station has nothing recorded (and where the log will be)."""
    return (f"No sessions yet: nothing has been recorded at this station (the pass log "
            f"{station} is created by the first session).")


@contextlib.contextmanager
def open_all(db: str | None) -> Iterator[list[PassLog]]:
    """Every log `smp sessions` reads as one, open read-only (as the service reads them).

    Without --db, a log of the data directory that cannot be opened (damaged, or a stray file
    named like a pen's log) is named in one warning line and left out; the others are read,
    and the command ends with `end_partial()`: exit 3 once its output is written."""
    from smpdevice.errors import SmpError
    from smpdevice.records import logset
    from smpdevice.records.model import PassLogError

    fresh = nothing_recorded(db)
    if fresh is not None:  # nothing to read: no log, no error (the commands say so)
        try:
            yield []
        except logset.UnknownSession as unknown:
            raise logset.UnknownSession(f"{sentence(unknown)} {nothing_yet(fresh)}") from unknown
        return
    skipped: list[tuple[Path, SmpError]] | None = None if db else []
    with logset.open_all(existing_logs(db), skipped=skipped) as logs:
        for path, exc in skipped or ():
            if isinstance(exc, logset.CopiedLog):  # read once: nothing is left unread
                click.secho(f"warning: {sentence(exc)} (`smp sessions verify` fails on it "
                            "until then)", fg="yellow", err=True)
                continue
            click.secho(f"warning: {sentence(exc)} Its sessions are left out; the other "
                        "logs are read "
                        f"(check it: smp sessions verify --db {shlex.quote(str(path))})",
                        fg="yellow", err=True)
        skipped = [(p, e) for p, e in skipped or () if not isinstance(e, logset.CopiedLog)]
        if skipped:
            click.get_current_context().meta[_LEFT_OUT] = [path for path, _ in skipped]
        try:
            yield logs
        except logset.UnknownSession as exc:
            if not skipped:
                raise
            raise PassLogError(f"{exc} It may be in a log that could not be read (named "
                               "above).") from exc


def sentence(error: Exception) -> str:
    """An error's message ending as a sentence, to go on with another on the same line."""
    text = str(error).rstrip()
    return text if text.endswith((".", "!", "?")) else text + "."


def end_partial() -> None:
    """Exit 3 (the pass log cannot be read) once the output is written, when `open_all` left
    a log out: the output is whole for the logs read, and the status says it is not all."""
    from smpdevice.outcomes import ExitCode

    if click.get_current_context().meta.get(_LEFT_OUT):
        sys.exit(ExitCode.RECORD_ERROR)


def make_console() -> Console:
    """The console of `smp sessions`: what it prints was recorded as given (a technician
    named `[/]`), so nothing in it is read as Rich markup."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, markup=False)


WHEN_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class When(click.DateTime):
    """DATE or DATE THH:MM[:SS], UTC. For --until (`end_of_day`), a DATE alone means "before
    the end of that day"; a time, even T00:00, means before that very time. Decided here,
    where the text is still known (2026-11-29 and 2026-11-29T00:00 parse to the same datetime)."""

    def __init__(self, end_of_day: bool) -> None:
        super().__init__(WHEN_FORMATS)
        self.end_of_day = end_of_day

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        when = super().convert(value, param, ctx)
        if not self.end_of_day or isinstance(value, datetime) or "T" in str(value):
            return when
        if when.date() == date.max:  # 9999-12-31: no upper bound (no later day exists)
            return None
        return when + timedelta(days=1)


def when_option(name: str, help_: str, end_of_day: bool = False):
    return click.option(name, type=When(end_of_day), default=None,
                        metavar="DATE[THH:MM]", help=help_)


def filter_options(fn):
    fn = when_option("--until", "Only passes/sessions begun before the end of this day (or "
                     "before this time), UTC.", end_of_day=True)(fn)
    fn = when_option("--since", "Only passes/sessions begun on or after this day or time, "
                     "UTC.")(fn)
    fn = click.option("--client", metavar="REF", help="Only this client's.")(fn)
    return click.option("--session", "session_id", metavar="ID",
                        help="Only this session (its id or a unique prefix).")(fn)


def make_filter(session_id: str | None, client: str | None, since: datetime | None,
                until: datetime | None) -> ExportFilter:
    """`until` is exclusive and already resolved by When (a day given: the next midnight)."""
    utc = (lambda d: None if d is None else d.replace(tzinfo=UTC))  # noqa: E731
    if session_id is not None:  # '' would prefix every session
        from smpdevice.errors import SmpError
        from smpdevice.sessions.resume import require_session_id

        try:
            require_session_id(session_id, SmpError)
        except SmpError as exc:
            raise click.BadParameter(str(exc), param_hint="--session") from None
    if since is not None and until is not None and \
            until.replace(tzinfo=UTC) <= since.replace(tzinfo=UTC):
        raise click.BadParameter(f"--until (before {until:%Y-%m-%d %H:%M}) is not after "
                                 f"--since {since:%Y-%m-%d %H:%M}; give a later --until",
                                 param_hint="--until")
    return ExportFilter(session=session_id, client=client, since=utc(since), until=utc(until))


def resolve_session(logs: list[PassLog], where: ExportFilter,
                    read: list[tuple[Path, Any]]) -> tuple[ExportFilter, Path | None]:
    """`where` with its --session (an id or a prefix) replaced by the one full id it names
    across every log (`read`: their `logset.sessions_of`, read once by the caller), as `smp
    sessions show`, `smp replay` and `--resume` resolve it, and the log holding it: a prefix
    of several sessions is refused naming them, an unknown id says so (exit 2). Never a bare
    prefix match: `--session S` would select every session."""
    if where.session is None:
        return where, None
    import dataclasses

    from smpdevice.records.logset import UnknownSession, matching
    from smpdevice.sessions.resume import pick_session

    named = "the pass log" if len(logs) <= 1 else f"the {len(logs)} pass logs"
    path, full_id = pick_session(matching(read, where.session), where.session, where=named,
                                 error=UnknownSession, hint="`smp sessions list` shows the ids",
                                 todo="give the one log meant (--db)", read_only=True)
    return dataclasses.replace(where, session=full_id), path
