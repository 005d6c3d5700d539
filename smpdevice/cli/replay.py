"""`smp replay SESSION`: replay a session's frame recording and compare (issue 15, part 3)."""

from __future__ import annotations

import contextlib
import sys

import click

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
              help="Pass-log file. Default: every log of the data directory ($SMP_DATA_DIR).")
def replay(session: str, into_sim: bool, faults: str | None, db: str | None) -> None:
    """Replay a recorded session and say whether it matches what was logged.

    Every session records the raw frames between host and pen beside the pass log
    (recordings/<SESSION>.mcap), linked by its SHA-256 in the session's close record. This
    checks that hash, feeds the recorded pen into a fresh controller on a virtual clock, plays
    the session's profile, and compares the commands the controller sends, its state changes
    and each pass's figures with the recording and the pass log. Prints `match` and exits 0,
    or names the first difference and exits 1.

    A resumed session (`smp run --resume`) has one recording per run (its parts, each
    linked by hash): each part is replayed into a fresh controller as its run started it
    (the passes left at the resume, remainders included). It matches only if every part
    does; otherwise the first difference names its part and file.

    The technician's inputs are inputs, not differences: a stop (Ctrl-C, the console's stop,
    a service client's stop) and an E-stop request are recorded with their time (channel
    /input) and applied to the replay at the same point of the conversation. How the
    controller reacts to them is compared as usual. Recordings made before inputs were kept
    replay as before.

    With --into-sim: the recorded host commands go to the simulator (the same simulated pen:
    its seed, model options and fault spec; seed 0 for a real one), and its replies are
    compared with the recorded pen's. --faults SPEC replaces the recorded fault spec. A
    resumed session is refused: its later parts start on a pen in mid-life (a fault cleared
    outside the recording), which a simulator started from its boot cannot be.

    SESSION is a session id (or a unique prefix of one), or `last` for the latest session.

    \b
    Example:
      smp replay S3f2a9c0e1b2d4f60
      smp replay last --into-sim
    """
    from smpdevice.outcomes import ExitCode
    from smpdevice.passlog import PassLog
    from smpdevice.paths import pass_log_paths

    if faults is not None and not into_sim:
        raise SmpError(f"--faults {faults!r} goes with --into-sim (it sets the simulator's "
                       "faults); add --into-sim, or drop --faults")
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(PassLog.open(str(p), readonly=True))
                for p in pass_log_paths(db) if p.exists()]
        if not logs:
            raise SmpError("no pass log in the data directory; `smp demo` or `smp run` make one "
                           "(or give --db PATH)")
        if session == "last":  # the session opened most recently, in any of the logs
            opened = [(s.opened_at, s.session_id) for log in logs for s in log.sessions()]
            if not opened:
                raise SmpError("there is no session to replay yet; `smp demo` records one")
            session = max(opened)[1]
        found = None
        for log in logs:
            with contextlib.suppress(SmpError):
                log.session(session)
                found = log
                break
        if found is None:
            raise SmpError(f"no session {session!r} in {', '.join(str(x.path) for x in logs)}; "
                           "`smp sessions list` shows the sessions")
        if into_sim:
            from smpdevice.replay.into_sim import replay_into_sim

            report = replay_into_sim(found, session, faults=faults)
        else:
            from smpdevice.replay.runner import replay_session

            report = replay_session(found, session)
    for note in report.notes:
        click.echo(f"note: {note}")
    what = "host frames replayed into the simulator" if into_sim else "commands"
    if report.match:
        parts = f"{report.parts} recorded parts, " if report.parts > 1 else ""
        click.echo(f"match: session {report.session_id}, {parts}{report.decisions} recorded "
                   f"{what}, recording {report.recording.name}")
        return
    click.echo(f"difference: session {report.session_id}: {report.difference}")
    sys.exit(ExitCode.CHECK_FAILED)
