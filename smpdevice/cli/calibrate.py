"""`smp calibrate` (guided or automatic, or `--verify-only`) and `smp calibrations list`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from smpdevice.cli.device import pen_identity, pen_link, port_option
from smpdevice.cli.params import finite_float, given_file
from smpdevice.control.calibration import DEFAULT_VALIDITY_DAYS, CalibrationError
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode, command
from smpdevice.service.cli_client import service_option

if TYPE_CHECKING:
    from pathlib import Path

    from smpdevice.calibration.gauges import GaugeError
    from smpdevice.calibration.report import CalibrationReport

DB_HELP = "The calibration database file (default: calibrations.sqlite in the data directory)."
OWN_DB = given_file("calibrations.sqlite in the data directory")  # --db "" is refused


class CalibrationFailed(CalibrationError):
    """A calibration (or `--verify-only`) ran and its check said no: exit 1 ("a check failed"),
    as an aborted one; 2 stays for what the user must change first (a bad option, port, a pen
    with no calibration to verify)."""

    exit_code = ExitCode.CHECK_FAILED


@click.command()
@port_option()
@service_option()
@click.option("--auto", is_flag=True,
              help="Read a simulator's gauge instead of asking a person (QA, demo).")
@click.option("--gauge", "gauge_url", metavar="URL",
              help="Gauge to read: tcp://HOST:PORT (printed by `smp sim`) or pensim://NAME. "
                   "Not needed for the in-process pensim:// pen.")
@click.option("--technician", "-t", metavar="NAME",
              help="Who calibrates (recorded). Default: $SMP_TECHNICIAN, else `technician` in "
                   "the station config; asked for in a guided run when none is set.")
@click.option("--db", "db", metavar="PATH", help=DB_HELP, callback=OWN_DB)
@click.option("--verify-only", is_flag=True,
              help="Only check the pen's current stored calibration at a few depths; saves "
                   "nothing.")
@click.option("--points", "depth_points", type=click.IntRange(3, 8), default=6, show_default=True,
              help="Depth points across the actuator travel.")
@click.option("--tolerance-mm", type=finite_float(0.001, 0.5), default=0.02,
              show_default=True, help="Largest residual (and verify error) accepted.")
@click.option("--speed-tolerance-pct", type=finite_float(0.1, 50), default=3.0,
              show_default=True, help="Largest speed error accepted.")
@click.option("--tachometer", is_flag=True,
              help="Guided run: also ask for an external tachometer reading at each speed.")
@click.option("--valid-days", type=finite_float(0.01, 365), default=DEFAULT_VALIDITY_DAYS,
              show_default=True, help="How long the new calibration stays valid.")
@click.option("--spin-seconds", type=finite_float(0.1, 10), default=1.0, show_default=True,
              help="How long the motor runs at each speed of the speed check.")
def calibrate(
    port: str,
    service: str | None,
    auto: bool,
    gauge_url: str | None,
    technician: str | None,
    db: str | None,
    verify_only: bool,
    depth_points: int,
    tolerance_mm: float,
    speed_tolerance_pct: float,
    tachometer: bool,
    valid_days: float,
    spin_seconds: float,
) -> None:
    """Calibrate a pen's depth (zero, depth points, fit), check its speed, verify, and save.

    A guided run tells the technician what to do and what to enter, and checks each entry
    (a number, in range, not a factor-10 typo, growing with the actuator). At any prompt,
    `r` redoes the previous point and `q` aborts without saving. A failing fit is never saved.

    \b
    Examples:
      smp calibrate --port /dev/ttyACM0 --technician ana     # guided, dial gauge
      smp calibrate --port pensim:// --auto                  # built-in simulator, no person
      smp calibrate --auto --port socket://127.0.0.1:7000 --gauge tcp://127.0.0.1:7001
      smp calibrate --verify-only --port /dev/ttyACM0        # check before a session

    With --service URL (or SMP_SERVICE), the pen of a running `smp serve` is calibrated: guided
    (the same prompts) or `--auto` (its simulated pen's gauge), with the options above; the
    service keeps the result.
    """
    given = given_options(click.get_current_context())  # for the command to run again
    if service:
        from smpdevice.calibration.report import CalibrationSettings as _Settings
        from smpdevice.cli import calibrate_remote
        from smpdevice.config import setting as _setting

        calibrate_remote.calibrate(
            service, auto=auto, technician=_setting("technician", technician).value,
            gauge_url=gauge_url, db=db, verify_only=verify_only,
            settings=_Settings(depth_points=depth_points, fit_tolerance_mm=tolerance_mm,
                               verify_tolerance_mm=tolerance_mm,
                               speed_tolerance_pct=speed_tolerance_pct,
                               ask_tachometer=tachometer, validity_days=valid_days,
                               spin_duration_s=spin_seconds), again_options=given)
        return
    from smpdevice.calibration.gauges import GaugeError
    from smpdevice.calibration.report import CalibrationSettings, format_verify
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.calibration.verify import run_verify
    from smpdevice.calibration.workflow import run_calibration
    from smpdevice.cli.calibrate_remote import technician_name
    from smpdevice.config import setting
    from smpdevice.control import PenController
    from smpdevice.ui.gauges import ManualGauge, open_gauge

    again = calibrate_again(port, auto=auto, gauge_url=gauge_url, db=db, technician=technician,
                            options=given)
    technician = setting("technician", technician).value
    if technician is not None:  # refused now, not when the result is saved after the pen ran
        technician = technician_name(technician)

    if auto and gauge_url is None and not port.startswith("pensim://"):
        raise SmpError(
            f"--auto reads a simulator's gauge, and {port} is not an in-process pensim:// pen: "
            "pass --gauge tcp://HOST:PORT (printed by `smp sim`)."
        )
    if gauge_url == "manual" and auto:
        raise SmpError("--auto and --gauge manual contradict each other; pick one.")
    settings = CalibrationSettings(
        depth_points=depth_points,
        fit_tolerance_mm=tolerance_mm,
        verify_tolerance_mm=tolerance_mm,
        speed_tolerance_pct=speed_tolerance_pct,
        ask_tachometer=tachometer,
        validity_days=valid_days,
        spin_duration_s=spin_seconds,
    )
    # open it first: a bad --db fails before the pen moves; --verify-only only reads it (a
    # reader is never blocked by another program's write), a run writes: its lock or a
    # read-only disk is refused now, not at the save (review 12)
    store = CalibrationStore(db, readonly=verify_only)
    if not verify_only:
        store.require_writable()
    with PenController.connect(port) as ctl:
        ident = pen_identity(ctl)
        serial = ident.serial
        if auto or gauge_url not in (None, "manual"):
            gauge = open_gauge(gauge_url, port_url=port, port=pen_link(ctl).port)
        else:
            gauge = ManualGauge()
        try:
            if verify_only:
                cal = store.latest(serial)
                if cal is None:
                    raise CalibrationError(f"pen {serial} has no calibration. "
                                           f"Calibrate it first: {again}")
                cal.check_for(serial, again=again)  # expired or future-dated: what to run
                click.echo(f"Verifying calibration {cal.calibration_id} of pen {serial} "
                           f"({cal.technician}, {cal.created_at:%Y-%m-%d}).")
                try:
                    result = run_verify(ctl, gauge, cal, settings=settings, echo=click.echo)
                except SmpError as exc:  # the pen cut it: a failed check, with what to do
                    first = pen_first_step(ctl.state, port)
                    if isinstance(exc, GaugeError) and not first:
                        raise gauge_failed(exc, f"verification of pen {serial}",
                                            f"{again} --verify-only") from exc
                    if not first:
                        raise
                    raise CalibrationFailed(
                        f"verification of pen {serial} was cut by the pen ({exc}); nothing "
                        f"was changed. {first}verify again: {again} --verify-only") from exc
                click.echo("\n".join(format_verify(result)))
                if not result.passed:
                    raise CalibrationFailed(
                        f"pen {serial} failed verification ({'; '.join(result.problems())}). "
                        f"Recalibrate: {again}"
                    )
                return
            if technician is None:
                technician = technician_name("auto" if not gauge.manual else
                                             click.prompt("Technician name"))
            click.echo(f"Calibrating pen {serial} (firmware {ident.firmware_version}) "
                       f"with the {gauge.description}.")
            try:
                report = run_calibration(ctl, gauge, technician=technician, settings=settings,
                                         store=store, echo=click.echo)
            except GaugeError as exc:
                raise gauge_failed(exc, f"calibration of pen {serial}", again) from exc
            first = pen_first_step(ctl.state, port)  # a run the pen cut: what to do first
        finally:
            gauge.close()
    kept = keep_unsaved(report, (ident.limits.speed_min_hz, ident.limits.speed_max_hz),
                        store.path, again)
    report_outcome(report, serial, retry=again, saved_to=store.path, first=first, kept=kept)


def keep_unsaved(report: CalibrationReport, speed_range_hz: tuple[float, float],
                 store_path: Path, retry: str) -> str:
    """A passed run the store refused (a lock): its calibration written to the data
    directory, signed with the installation key, and what to run to save it later ("" when
    there is none to keep). The file and the store are printed as absolute paths: a relative
    --db or SMP_DATA_DIR run later from another directory would make a new database there."""
    import os

    from smpdevice.calibration.unsaved import write_unsaved
    from smpdevice.paths import data_dir

    cal = report.unsaved
    if cal is None or report.save_error is None:
        return ""
    try:
        path = write_unsaved(cal, speed_range_hz, data_dir(), report.settings)
    except (OSError, SmpError) as exc:
        return (f" Its calibration could not be kept in a file either ({exc}); the report "
                f"above keeps its readings. Once the database is free, run again: {retry}")
    kept = os.path.abspath(path)
    save = command("smp", "calibrations", "import", kept, "--pen", cal.pen_serial,
                   "--db", os.path.abspath(store_path))
    return (f" Its calibration {cal.calibration_id} is kept in {kept}; once the database is "
            f"free, save it: {save} (or calibrate again: {retry})")


def gauge_failed(exc: GaugeError, what: str, again: str) -> SmpError:
    """The gauge failed mid-run (garbage, silence, unasked lines): an aborted calibration,
    exit 1 (README), not a bad option; the technician's own end of input says it already."""
    from smpdevice.ui.gauges import NoGaugeReading

    if isinstance(exc, NoGaugeReading):
        return exc
    return CalibrationFailed(f"{what} stopped: {str(exc).rstrip('.')}. Nothing was saved. "
                             f"When the gauge answers, run again: {again}")


def pen_first_step(state: object, port: str = "", *, service: str | None = None) -> str:
    """What to do before calibrating again when the pen ended the run: clear its latched
    fault or E-stop, or find it again after the link was lost ('' otherwise). The commands
    reach the pen as the run did: its `port`, or the `service` URL (never the served port)."""
    from smpdevice.control.states import SAFE, State

    reach = ("--service", service) if service else ("--port", port)
    if state in SAFE:
        cause = "the E-stop's cause" if state is State.ESTOP else "the cause (jam, cartridge, heat)"
        return (f"Remove {cause}, then clear the pen: "
                f"{command('smp', 'clear', *reach)}; then ")
    if state is State.DISCONNECTED:
        where = "the service and the pen" if service else "the cable and the pen's power"
        return (f"Check {where}, and that it answers: "
                f"{command('smp', 'info', *reach)}; then ")
    return ""


# The options of `smp calibrate` that change what a run checks or saves, by parameter name:
# a command printed to run again carries each one this run was given (not left to its
# default), so that a retry never saves a calibration valid 365 days where the clinic gave 30,
# nor checks it against a looser tolerance. (--port/--service, --auto, --gauge, --db and -t
# are written by the caller; --verify-only is not repeated: the retry recalibrates.)
AGAIN_OPTIONS = (("depth_points", "--points"), ("tolerance_mm", "--tolerance-mm"),
                 ("speed_tolerance_pct", "--speed-tolerance-pct"),
                 ("valid_days", "--valid-days"), ("spin_seconds", "--spin-seconds"),
                 ("tachometer", "--tachometer"))


def given_options(ctx: click.Context) -> list[str]:
    """The AGAIN_OPTIONS this run was given (typed, from the environment or a config; not
    the built-in default), as words of a command line."""
    from click.core import ParameterSource

    words: list[str] = []
    for name, flag in AGAIN_OPTIONS:
        value = ctx.params.get(name)
        if ctx.get_parameter_source(name) in (None, ParameterSource.DEFAULT) or value is None:
            continue
        if isinstance(value, bool):
            words += [flag] if value else []
        else:
            words += [flag, _number(value)]
    return words


def _number(value: float) -> str:
    """As typed where it can be (`30`, not `30.0`), and exactly the same value."""
    text = repr(value)
    return text.removesuffix(".0") if isinstance(value, float) else text


def calibrate_again(port: str, *, auto: bool, gauge_url: str | None, db: str | None,
                    technician: str | None, options: list[str] | tuple[str, ...] = ()) -> str:
    """The `smp calibrate` to run again, with this run's gauge, database, `-t` and `options`
    (`given_options`): copied as printed it calibrates the same pen the same way, checks it
    against the same tolerances and saves where (and for as long as) this run would have."""
    words = ["--auto"] if auto else []  # a guided run again guided, also on the simulator
    for option, value in (("--gauge", gauge_url), ("--db", db), ("-t", technician)):
        if value:
            words += [option, value]
    return command("smp", "calibrate", "--port", port, *words, *options)


def report_outcome(report: CalibrationReport, serial: str, *, retry: str,
                   saved_to: object, first: str = "", kept: str = "") -> None:
    """Print a finished run's report, then raise unless it passed (at the station and through
    the service alike); `retry` is the command to run again, after `first` (`pen_first_step`)."""
    from smpdevice.calibration.gauges import CalibrationAborted
    from smpdevice.calibration.report import format_report

    click.echo("")
    click.echo(format_report(report))
    if report.aborted:
        raise CalibrationAborted()
    if report.save_error is not None:  # measured and verified; the store refused it (exit 3)
        raise type(report.save_error)(
            f"calibration of pen {serial} passed its checks but was not saved or installed: "
            f"{str(report.save_error).rstrip('.')}." + (kept or " The report above keeps its "
                f"readings; once the database is free, run again: {retry}"))
    if not report.passed:
        raise CalibrationFailed(
            f"calibration of pen {serial} failed; nothing was saved. " + (
                first + f"run again: {retry}" if first else
                f"Fix the cause above and run again: {retry}"))
    click.echo(f"Saved to {saved_to}.")
