"""`smp calibrations`: the stored calibrations, listed and shown (with their status and the
two bench figures of 21 CFR 878.4430)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from smpdevice.cli.calibrate import DB_HELP, OWN_DB
from smpdevice.cli.params import count, given_pen
from smpdevice.control.calibration import Calibration, CalibrationError, today_utc
from smpdevice.errors import SmpError


@click.group()
def calibrations() -> None:
    """Stored calibrations.

    \b
    Example:
      smp calibrations list --pen SMP-7K2Q9XAB
    """


@calibrations.command("list")
@click.option("--pen", "pen_serial", metavar="SERIAL", help="Only this pen's calibrations.")
@click.option("--db", "db", metavar="PATH", help=DB_HELP, callback=OWN_DB)
@click.option("--limit", type=count(), default=50, show_default=True,
              help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the calibrations as JSON.")
def list_calibrations(pen_serial: str | None, db: str | None, limit: int,
                      as_json: bool) -> None:
    """List calibrations, newest first, with their status: valid, expired, future-dated
    (dated after this computer's clock; refused when arming, as an expired one is), or
    superseded (a newer calibration of the pen was saved: a run takes only the newest).

    \b
    Examples:
      smp calibrations list
      smp calibrations list --pen SMP-7K2Q9XAB --db ./calibrations.sqlite --json
    """
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.cli.sessions import simulated_text

    given_pen(pen_serial, ", or leave --pen out to list every pen's calibrations")
    store = CalibrationStore(db, readonly=True)  # reads backups on read-only media too
    damaged: list[tuple[str, str]] = []  # listed as such: one bad row never hides the rest
    found = store.entries(pen_serial, limit=limit, damaged=damaged)
    current = store.current_ids([e.calibration.pen_serial for e in found])
    if as_json:
        click.echo(json.dumps([_calibration_json(e, current) for e in found] + [
            {"calibration_id": cid, "status": "damaged", "problem": why}
            for cid, why in damaged], indent=2))
        return
    for cid, why in damaged:
        click.secho(f"warning: calibration {cid} in {store.path} is damaged ({why}); it is "
                    "never used. Recalibrate the pen if it has no valid calibration.",
                    fg="yellow", err=True)
    if not found:
        who = f"pen {pen_serial}" if pen_serial else "any pen"
        click.echo(f"No calibrations for {who} in {store.path}. Make one: "
                   "smp calibrate --port PORT (on the simulator: smp calibrate --port pensim:// "
                   "--auto).")
        return
    now = today_utc()
    click.echo(f"{'id':12}  {'pen':12}  {'technician':12}  {'created (UTC)':16}  "
               f"{'expires (UTC)':16}  {'status':12}  {'simulated':9}  {'offset mm':>9}  "
               f"{'gain':>6}  {'worst res mm':>12}")
    for entry in found:
        c = entry.calibration
        worst = max((abs(r) for r in c.residuals_mm), default=0.0)
        status, _ = calibration_status(c, now, current)
        click.echo(
            f"{c.calibration_id:12}  {c.pen_serial:12}  {c.technician[:12]:12}  "
            f"{c.created_at:%Y-%m-%d %H:%M}  {c.expires_at:%Y-%m-%d %H:%M}  {status:12}  "
            f"{simulated_text(entry.simulated):9}  {c.offset_mm:+9.4f}  {c.gain:6.4f}  "
            f"{worst:12.4f}"
        )


@calibrations.command("show")
@click.argument("calibration_id")
@click.option("--db", "db", metavar="PATH", help=DB_HELP, callback=OWN_DB)
@click.option("--json", "as_json", is_flag=True, help="Print the calibration as JSON.")
def show_calibration(calibration_id: str, db: str | None, as_json: bool) -> None:
    """Show one calibration: its fit, points, residuals, status and whether it was simulated.

    \b
    Example:
      smp calibrations show 3f2a9c1b7d0e
    """
    from smpdevice.calibration.store import CalibrationStore

    store = CalibrationStore(db, readonly=True)
    entry = store.entry(calibration_id)
    if entry is None:
        raise SmpError(f"no calibration {calibration_id!r} in {store.path}; "
                       "`smp calibrations list` shows their ids")
    data = _calibration_json(entry, store.current_ids([entry.calibration.pen_serial]))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key in ("calibration_id", "pen_serial", "technician", "created_at", "expires_at",
                "status", "simulated", "offset_mm", "gain", "speed_error_pct"):
        click.echo(f"{key.replace('_', ' '):16} {data.get(key)}")
        if key == "status" and data.get("problem"):
            click.echo(f"{'':16} {data['problem']}")
    click.echo(f"{'points':16} " + ", ".join(f"actuator {a:g} -> {d:g} mm"
                                             for a, d in data.get("points") or []))
    click.echo(f"{'residuals mm':16} " + ", ".join(f"{r:+.4f}"
                                                  for r in data.get("residuals_mm") or []))
    depth = data["depth_accuracy"]
    click.echo(f"{'depth accuracy':16} " + (
        "not recorded (a calibration made before it was)" if depth is None else
        f"N={depth['n']} check readings: mean error {depth['mean_error_mm']:+.4f} mm, "
        f"sd {depth['sd_mm']:.4f} mm, max error {depth['max_error_mm']:+.4f} mm"))
    click.echo(f"{'puncture rate':16} " + (", ".join(
        f"set {p['set_hz']:g} Hz -> {p['measured_hz']:.2f}/s ({p['error_pct']:+.2f} %)"
        for p in data["puncture_rate"]) or "not recorded"))


@calibrations.command("import")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--pen", "pen_serial", metavar="SERIAL",
              help="The pen it is for: a file of another pen's calibration is refused.")
@click.option("--db", "db", metavar="PATH", help=DB_HELP, callback=OWN_DB)
def import_calibration(file: str, pen_serial: str | None, db: str | None) -> None:
    """Save a calibration that `smp calibrate` could not save (another program held the
    calibration database locked) and kept in FILE, in the data directory
    (unsaved-calibration-ID.json; `smp calibrate` prints the command to run).

    FILE is signed with this installation's key (the one the pass log signs with): it is
    imported only on the installation that made it. Every check a save applies is made again,
    before the database is opened: a file edited or damaged since it was written (its
    signature), its fit, depth checks, puncture rates and speed against the run's bounds, a
    speed check not at the station's three speeds, a calibration already expired or dated
    ahead of this computer's clock, one for another pen than --pen, one already saved, or one
    older than the pen's newest stored calibration (it would supersede that one) is refused
    and nothing is changed. Once saved, the file is removed, and the next `smp run` of the
    pen uses it (a running `smp serve` loads the pen's calibration when it starts).

    \b
    `smp calibrate` prints the command to run (not a runnable example: the file is made by a
    run that found the database locked), for instance:
      smp calibrations import DATA_DIR/unsaved-calibration-3f2a9c1b7d0e.json --pen SMP-7K2Q9XAB
    """
    from smpdevice.calibration.store import CalibrationStore
    from smpdevice.calibration.unsaved import check_unsaved, save_unsaved
    from smpdevice.config import user_path

    if not file.strip():  # a script's unset variable: never "." (refused, nothing opened)
        raise SmpError(f"FILE {file!r}: no file was given (an unset or empty variable?); "
                       "nothing was opened. Give the unsaved-calibration file `smp calibrate` "
                       "named")
    given_pen(pen_serial, ", or leave --pen out to import the file for its own pen")
    path = user_path(file)
    kept = check_unsaved(path, pen_serial=pen_serial)  # refused before any store is opened
    store = CalibrationStore(db)  # a bad --db, a locked or read-only file: refused here
    cal = save_unsaved(path, kept, store)
    click.echo(f"Saved calibration {cal.calibration_id} of pen {cal.pen_serial} (made "
               f"{cal.created_at:%Y-%m-%d %H:%M} UTC by {cal.technician}, valid until "
               f"{cal.expires_at:%Y-%m-%d %H:%M} UTC) to {store.path}; {file} was removed.")


def _calibration_json(entry, current: dict[str, str]) -> dict:
    """A stored calibration as JSON, with its status (`current`: each pen's newest id) and the
    store's `simulated` (null: saved before smpdevice recorded it)."""
    c = entry.calibration
    data = c.model_dump(mode="json")
    data["simulated"] = entry.simulated
    data["status"], problem = calibration_status(c, today_utc(), current)
    if problem:
        data["problem"] = problem  # the arming's own sentence: why it is refused
    data.update(accuracy_json(c))
    return data


def calibration_status(c: Calibration, now: datetime,
                       current: dict[str, str] | None = None) -> tuple[str, str]:
    """"valid", "expired", "future-dated" or "superseded", and why it is refused ("" when
    valid): the check arming makes (`Calibration.check_for`, on its own pen) on the pen's
    newest calibration, the only one a run takes (`current`: each pen's newest id), so a list
    never calls valid what a run refuses (review 15, S6; review 17)."""
    newest = (current or {}).get(c.pen_serial, c.calibration_id)
    if newest != c.calibration_id:
        return "superseded", (f"calibration {newest} of pen {c.pen_serial} was saved after it; "
                              "a run takes only the pen's newest calibration")
    try:
        c.check_for(c.pen_serial, now)
    except CalibrationError as exc:
        # check_for refuses a calibration of its own pen for one of two reasons: a date after
        # this computer's clock, or its expiry
        return ("future-dated" if c.created_at > now else "expired"), str(exc)
    return "valid", ""


def accuracy_json(c: Calibration) -> dict:
    """The two bench figures (21 CFR 878.4430) of a stored calibration, from its check
    readings; None / [] for a calibration saved before they were recorded."""
    from smpdevice.calibration.accuracy import depth_accuracy

    depth = None
    if len(c.depth_checks) >= 2:
        acc = depth_accuracy(c.depth_checks)
        depth = {"n": acc.n, "mean_error_mm": round(acc.mean_error_mm, 6),
                 "sd_mm": round(acc.sd_mm, 6), "max_error_mm": round(acc.max_error_mm, 6)}
    rates = [{"set_hz": s, "measured_hz": round(m, 4), "error_hz": round(m - s, 4),
              "error_pct": round(100 * (m - s) / s, 4)} for s, m in c.rate_checks if s > 0]
    return {"depth_accuracy": depth, "puncture_rate": rates}
