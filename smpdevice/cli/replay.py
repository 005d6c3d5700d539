"""`smp replay SESSION`: replay a session's frame recording and compare (issue 15, part 3)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from smpdevice.cli.params import given_file
from smpdevice.errors import SmpError


@click.command()
@click.argument("session")
@click.option("--into-sim", is_flag=True,
              help="Play the recorded host commands into the simulator and compare its replies "
                   "with the pen's, instead of replaying the pen into a fresh controller.")
@click.option("--faults", "faults", metavar="SPEC", default=None,
              help="With --into-sim: the simulator's fault spec instead of the recorded port's "
                   "(e.g. jam@1.5; see docs/simulator.md). Default: the recorded spec.")
@click.option("--db", "db", type=click.Path(dir_okay=False), default=None,
              callback=given_file("every log of the data directory"),
              help="Pass-log file. Default: every log of the data directory ($SMP_DATA_DIR).")
def replay(session: str, into_sim: bool, faults: str | None, db: str | None) -> None:
    """Replay a recorded session and say whether it matches what was logged.

    Every session records the raw frames between host and pen beside the pass log
    (recordings/<SESSION>.mcap), linked by its SHA-256 in the session's close record. This
    checks that hash, feeds the recorded pen into a fresh controller on a virtual clock, plays
    the session's profile, and compares the commands the controller sends, its state changes
    and each pass's figures with the recording and the pass log. Prints `match` and exits 0,
    or names the first difference and exits 1. What the replayed controller logs (a lapsed
    lease, an unconfirmed stop: what the recorded run said already) goes to smp.log, not the
    terminal.

    A resumed session (`smp run --resume`) has one recording per run (its parts, each
    linked by hash): each part is replayed into a fresh controller as its run started it
    (the passes left at the resume, remainders included). It matches only if every part
    does; otherwise the first difference names its part and file.

    The technician's inputs are inputs, not differences: a stop (Ctrl-C, the console's stop,
    a service client's stop) and an E-stop request are recorded with their time (channel
    /input) and applied to the replay at the same point of the conversation. How the
    controller reacts to them is compared as usual. So is a lost pen link (a pulled cable:
    the recorded port fails at the same point; a silence the controller judged is its own
    decision, not fed). Recordings made before inputs were kept replay as before.

    With --into-sim: the recorded host commands go to the simulator (the same simulated pen:
    its seed, model options and fault spec; seed 0 for a real one), and its replies are
    compared with the recorded pen's. --faults SPEC replaces the recorded fault spec. A
    resumed session is played part by part into one simulator carried over (as the pen
    stayed on), brought to each part's start from its recording: its clock, an idle pen
    (CLEAR_FAULTS for the clear outside the recording; NEEDLE_STOP and DISARM for a needle
    a reconnect stopped), a fresh simulator if the pen was
    restarted, the handshake of a new connection. It prints per part whether the pen side
    matches, and exits 1 naming the first part that differs.

    SESSION is a session id (or a unique prefix of one), or `last` for the latest session.
    An empty SESSION, or a prefix of several sessions, is refused (exit 2).

    \b
    Example:
      smp replay S3f2a9c0e1b2d4f60
      smp replay last --into-sim
    """
    from smpdevice.outcomes import ExitCode

    _check_session_argument(session)
    if faults is not None and not into_sim:
        raise SmpError(f"--faults {faults!r} goes with --into-sim (it sets the simulator's "
                       "faults); add --into-sim, or drop --faults")
    if db and not Path(db).exists():  # the file the user named, not the data directory
        raise SmpError(f"no pass log at {db}: give the right --db (a pass-log file), or "
                       "drop --db to read every log of the data directory")
    from smpdevice.logs import terminal_muted

    with _open_logs(db) as logs, terminal_muted():  # the replayed run's lines: smp.log only
        found, session = _find_session(logs, session)
        if into_sim:
            from smpdevice.replay.into_sim import replay_into_sim

            report = replay_into_sim(found, session, faults=faults)
        else:
            from smpdevice.replay.runner import replay_session

            report = replay_session(found, session)
    for note in report.notes:
        click.echo(f"note: {note}")
    if into_sim and report.parts > 1:  # whether each part's pen side matched, and why not
        _echo_parts(report)
    what = "host frames replayed into the simulator" if into_sim else "commands"
    if report.match:
        parts = f"{report.parts} recorded parts, " if report.parts > 1 else ""
        click.echo(f"match: session {report.session_id}, {parts}{report.decisions} recorded "
                   f"{what}, recording {report.recording.name}")
        return
    click.echo(f"difference: session {report.session_id}: {report.difference}")
    sys.exit(ExitCode.CHECK_FAILED)


@contextlib.contextmanager
def _open_logs(db: str | None) -> Iterator[list[Any]]:
    """The logs to look in, read-only: --db alone, else every log of the data directory, as
    `smp sessions` reads them. A log of the data directory that cannot be opened (damaged, or
    a stray `passlog-X.sqlite`) is named in one warning line and left out, the others read;
    a session then not found may be in it, and the error says so. Its words never name a
    --db the user did not give."""
    from smpdevice.cli.sessions_common import existing_logs, nothing_recorded, sentence
    from smpdevice.records import logset
    from smpdevice.records.model import PassLogError

    if nothing_recorded(db) is not None:
        raise SmpError("no pass log in the data directory; `smp demo` or `smp run` make one "
                       "(or give --db PATH)")
    skipped: list[tuple[Path, SmpError]] | None = None if db else []
    with logset.open_all(existing_logs(db), skipped=skipped) as logs:
        for _path, exc in skipped or ():
            click.secho(f"warning: {sentence(exc)} Its sessions are left out; the other logs "
                        "are read (`smp sessions verify` checks every log)", fg="yellow",
                        err=True)
        try:
            yield logs
        except logset.UnknownSession as exc:
            if not skipped:
                raise
            raise PassLogError(f"{sentence(exc)} It may be in a log that could not be read "
                               "(named above).") from exc


MAX_CANDIDATES = 10  # session ids an ambiguous prefix names


def _find_session(logs: list[Any], session: str) -> tuple[Any, str]:
    """The pass log holding SESSION and its full id: `last`, an id, or a unique prefix of
    one across every log. An empty, blank or non-alphanumeric SESSION is a usage error (an
    empty prefix would match every session); a prefix of several names them."""
    from smpdevice.records.logset import UnknownSession

    if session == "last":  # the session opened most recently, in any of the logs
        opened = [(s.opened_at, s.session_id, log) for log in logs for s in log.sessions()]
        if not opened:
            raise UnknownSession("there is no session to replay yet; `smp demo` records one")
        latest = max(opened, key=lambda item: (item[0], item[1]))
        return latest[2], latest[1]
    matches = [(log, s.session_id) for log in logs for s in log.sessions()
               if s.session_id.startswith(session)]
    exact = [m for m in matches if m[1] == session]
    if exact:
        matches = exact[:1]
    if not matches:
        raise UnknownSession(f"no session {session!r} in "
                             f"{', '.join(str(x.path) for x in logs)}; `smp sessions list` "
                             "shows the sessions")
    ids = sorted({sid for _, sid in matches})
    if len(ids) > 1:
        shown = ", ".join(ids[:MAX_CANDIDATES])
        more = f" and {len(ids) - MAX_CANDIDATES} more" if len(ids) > MAX_CANDIDATES else ""
        raise SmpError(f"{session!r} matches {len(ids)} sessions ({shown}{more}); give more "
                       "of the id")
    return matches[0]


def _check_session_argument(session: str) -> None:
    """Refuse (usage error, exit 2) what cannot name a session: empty or blank (a prefix of
    every id), or anything but letters and digits."""
    if not session.strip():
        raise click.BadParameter(
            f"{session!r} is empty or blank: give a session id (or a unique prefix of one, or "
            "`last`); `smp sessions list` shows them", param_hint="SESSION")
    if not session.isascii() or not session.isalnum():
        raise click.BadParameter(
            f"{session!r} is not a session id: ids are letters and digits (e.g. "
            "S3f2a9c0e1b2d4f60); `smp sessions list` shows them", param_hint="SESSION")


def _echo_parts(report: Any) -> None:
    results = report.part_results
    for result in results:
        how = f" ({'; '.join(result.started)})" if result.started else ""
        verdict = "pen side matches" if result.match else "pen side differs"
        click.echo(f"{result.label}: {verdict}, {result.host_frames} host frames{how}")
    if len(results) < report.parts:
        click.echo(f"{report.parts - len(results)} later part(s) not replayed: the simulator "
                   "differs from the recorded pen from the part above on")
