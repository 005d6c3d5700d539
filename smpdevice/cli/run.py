"""`smp run PROFILE`: play a treatment profile on a pen, recording every pass."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from smpdevice.cli.device import port_option
from smpdevice.errors import SmpError


def load_screening(path: str | None):
    """Screening answers from a YAML/JSON file, or asked one by one at a terminal."""
    import json

    import yaml

    from smpdevice.screening import QUESTIONS, parse_screening

    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SmpError(f"cannot read the screening file {path}: {exc.strerror}") from exc
        try:
            data = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise SmpError(f"the screening file {path} is not valid YAML/JSON: {exc}") from exc
        return parse_screening(data)
    if not click.get_text_stream("stdin").isatty():
        raise SmpError(
            "a session needs the contraindication screening: pass --screening FILE "
            "(answers true/false for " + ", ".join(QUESTIONS) + ") or run at a terminal."
        )
    click.echo("Contraindication screening (answer for the treatment area):")
    return parse_screening(
        {name: click.confirm(f"  {question}", default=None) for name, (question, _) in
         QUESTIONS.items()}
    )


def play_profile(
    *,
    profile_path: str,
    port: str,
    technician: str,
    screening,
    db: str | None,
    calibrations: str | None,
    console: Console,
    envelope: str | None = None,
    progress_enabled: bool = True,
) -> tuple[str, dict, str, Path]:
    """Connect, check, open the session, play its plan with live figures, close it.

    Returns (session id, summary, aftercare sheet, pass-log path).
    """
    from smpdevice.calibration_store import CalibrationStore
    from smpdevice.controller import PenController
    from smpdevice.envelope import load_envelope
    from smpdevice.passlog import PassLog
    from smpdevice.profiles import load_profile

    zones = load_envelope(envelope)
    profile = load_profile(profile_path, zones)  # a bad profile never reaches the pen
    if not profile.plan:
        raise SmpError(f"{profile_path} has no plan of passes to play; add a `plan:` list")
    store = CalibrationStore(calibrations)
    with PassLog.open(db) as passlog, PenController.connect(port, zones=zones) as pen:
        calibration = store.latest(pen.identity.serial)
        if calibration is None:
            raise SmpError(
                f"pen {pen.identity.serial} has no calibration. Calibrate it first: "
                f"`smp calibrate --port {port}`" + (" --auto" if port.startswith("pensim") else "")
                + "."
            )
        calibration.check_for(pen.identity.serial)
        pen.set_calibration(calibration)
        session_id, summary, sheet = run_session(
            pen, passlog, profile, technician=technician, screening=screening,
            console=console, progress_enabled=progress_enabled,
        )
        return session_id, summary, sheet, passlog.path


def run_session(pen, passlog, profile, *, technician: str, screening, console: Console,
                progress_enabled: bool = True) -> tuple[str, dict, str]:
    """Open the session on a connected, calibrated pen, play it, close it."""
    from smpdevice.session import TreatmentSession

    if passlog.recovered:
        console.print(f"[yellow]Recovered {len(passlog.recovered)} pass(es) left open by a "
                      "crash; they are recorded as controller_crashed.[/yellow]")
    session = TreatmentSession.open(pen, passlog, profile, technician=technician,
                                    screening=screening)
    console.print(f"Session {session.session_id}: {profile.session_kind.value} for client "
                  f"{profile.client_ref} on pen {pen.identity.serial} (calibration "
                  f"{pen.calibration.calibration_id}), {len(profile.plan)} passes.")
    try:
        _play(session, console, progress_enabled)
    except BaseException:
        try:  # close what can be closed, but never hide the first error behind a second
            session.close()
        except Exception as close_error:
            console.print(f"[red]The session could not be closed cleanly: {close_error}[/red]")
        raise
    summary, sheet = session.close()
    return session.session_id, summary, sheet


def _play(session, console: Console, progress_enabled: bool) -> None:
    columns = [
        TextColumn("pass {task.fields[index]}/{task.fields[passes]} {task.fields[zone]:<10}"),
        BarColumn(),
        TextColumn("{task.fields[figures]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, disable=not progress_enabled) as progress:
        tasks: dict[int, int] = {}

        def on_progress(p) -> None:
            t, sp = p.telemetry, session.pen.setpoints
            depth = t.depth_mm if t and t.depth_mm is not None else float("nan")
            figures = (f"depth {depth:.2f} mm  {sp.speed_hz:g} Hz x {sp.duty_pct:g} %  "
                       f"strokes {p.strokes:>4}" if t and sp else "")
            if p.index not in tasks:
                tasks[p.index] = progress.add_task("", total=1.0, index=p.index + 1,
                                                   passes=p.total, zone=p.zone, figures=figures)
            progress.update(tasks[p.index], completed=p.fraction, figures=figures)

        results = session.play(on_progress=on_progress)
    for r in results:
        style = "green" if r.outcome == "completed" else "red"
        console.print(f"  pass {r.index + 1} {r.zone:<10} [{style}]{r.outcome.value}[/{style}] "
                      f"strokes {r.stats.strokes}, impressions {r.stats.impressions}"
                      + (f" — {r.detail}" if r.detail else ""))


@click.command()
@click.argument("profile", type=click.Path(dir_okay=False))
@port_option()
@click.option("--technician", "-t", required=True, metavar="NAME", help="Who treats (recorded).")
@click.option("--screening", "screening_file", metavar="FILE",
              help="Contraindication answers (YAML/JSON, every question true/false). "
                   "Asked at the terminal when omitted.")
@click.option("--db", metavar="PATH",
              help="Pass log file (default: passlog.sqlite in $SMP_DATA_DIR or the per-user "
                   "data directory).")
@click.option("--calibrations", metavar="PATH",
              help="Calibration database (default: calibrations.sqlite in the data directory).")
@click.option("--envelope", metavar="FILE",
              help="Zone limits overriding the defaults (YAML/JSON, same shape as "
                   "smpdevice.envelope.DEFAULT_ZONES); still narrowed to the pen's limits.")
def run(profile: str, port: str, technician: str, screening_file: str | None, db: str | None,
        calibrations: str | None, envelope: str | None) -> None:
    """Play a treatment profile on a pen and record every pass.

    Connects, checks the profile against the pen's envelope, checks the pen's calibration and
    the screening, opens the session, plays the plan pass by pass with live figures, and closes
    with the summary and the aftercare sheet. Ctrl-C stops the needle first, records the pass,
    then exits.

    \b
    Example (built-in simulator):
      smp calibrate --auto
      smp run examples/session1_base_density.yaml -t ana --screening screening.yaml
    """
    console = Console()
    answers = load_screening(screening_file)
    try:
        session_id, _summary, sheet, path = play_profile(
            profile_path=profile, port=port, technician=technician, screening=answers, db=db,
            calibrations=calibrations, console=console, envelope=envelope,
        )
    except KeyboardInterrupt:
        console.print("[red]Interrupted: the needle is stopped; a pass in progress was recorded "
                      "as stopped.[/red]")
        raise SystemExit(130) from None
    console.print()
    console.print(sheet)
    console.print(f"Pass log: {path}  —  see it with `smp sessions show {session_id}"
                  + (f" --db {path}`" if db else "`"))
