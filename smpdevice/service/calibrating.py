"""The service's `calibration.*` methods: the steps a guided calibration needs, so a client
(the console's wizard, `smp calibrate --service`) can run the same workflow as at the station.

    calibration.begin -> move / spin (and, on a simulated pen, read_gauge) -> save -> end

A guided client fits the calibration itself from the technician's readings; the service then
refuses anything it cannot vouch for: the fields are checked by `Calibration`'s own strict
validator, the calibration must belong to this pen, be fresh (made within `FRESH_S` of the
service's clock), not be expired already, not outlive `VALIDITY_MAX_DAYS`, and carry this
pen's `simulated` flag; and it must pass the station's own checks against what the service
saw in this run (`calibration_run.check_evidence`: refit, residuals, depth accuracy, puncture
rates, the station's three speeds). The
technician recorded is the connection's name (`rpc.hello`'s `client`), not the payload's. It is
saved to the service's store (`calibration.save`), which then installs what its store holds
on this host at once (the pen never runs on a calibration its store has superseded, whatever
ends the run: an E-stop, a lost driver, a new run); `calibration.end {calibration_id}` writes
it to the pen, and takes only the id `save` answered in this connection's current run: never
an unrecorded calibration, nor an older stored one (review 19: a run ended from outside after
its save is ended with that id from idle).

The store is the truth (review 20): one the pen could not take at the save (latched by an
E-stop meanwhile) is installed once the pen is idle again (session_gate.py: `follow_store`,
`install_newest`), and no session opens on an older one.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from smpdevice.calibration.report import CalibrationSettings, check_spin, telemetry_rate_hz
from smpdevice.calibration.workflow import count_punctures
from smpdevice.control.calibration import Calibration, CalibrationError
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import State
from smpdevice.errors import SmpError
from smpdevice.service.calibration_run import CalibrationRun, Spin, check_evidence
from smpdevice.service.pen_service import method

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")
FRESH_S = 600.0  # a guided run's fit is saved within minutes of being made
MAX_SPIN_FRAMES = 4000  # 10 s of telemetry at the pen's fastest rate, with margin
MAX_SPINS = 64  # a guided run spins a few times (redos included); bounded


def service_store(service: PenService, readonly: bool = False) -> Any:
    """The service's own store: beside its pass log (ServiceOptions.data_dir), the one the
    service read its pen's calibration from; $SMP_DATA_DIR's only for a service without one."""
    from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore

    if service.passlog_path is None:
        return CalibrationStore(readonly=readonly)
    return CalibrationStore(service.passlog_path.parent / CALIBRATIONS_NAME, readonly=readonly)


def service_words(text: str) -> str:
    """A store's message for a client of the service, which has no --db to pass."""
    return re.sub(r",? or pass another --db PATH", "", text)


def writable_store(service: PenService) -> Any:
    """The service's store, opened to write now (`require_writable`): a locked file, a
    read-only disk refused before the pen moves, not after the run; worded for a client of
    the service (which has no --db to pass: the store is the service's own)."""
    from smpdevice.calibration.store_sql import CalibrationStoreError

    try:
        store = service_store(service)
        store.require_writable()
    except CalibrationStoreError as exc:
        text = service_words(str(exc)).rstrip(".")
        raise type(exc)(f"the service's calibration store refuses to save: {text}. Nothing "
                        "was moved; calibrate again through the service when it is free"
                        ) from None
    return store


def _require_calibrating(service: PenService, what: str) -> None:
    if service.pen.state is not State.CALIBRATING:
        raise SmpError(f"{what} needs the pen in calibrating (it is {service.pen.state.value}); "
                       "call calibration.begin first")


def check_submitted(service: PenService, data: dict[str, Any],
                    now: datetime | None = None) -> Calibration:
    """A calibration sent by a client -> a `Calibration` this service may save, or an error
    that names the field, its value and what is allowed."""
    pen = service.pen
    try:
        cal = Calibration.model_validate(data)  # strict: types, finiteness, ranges, zones
    except ValidationError as exc:  # what the strict pre-check leaves to pydantic (dates)
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "calibration"
        raise CalibrationError(f"calibration.{where}={str(first.get('input'))[:60]!r} is "
                               f"refused: {first['msg']}; send it as "
                               "`Calibration.model_dump(mode='json')` makes it") from None
    if cal.pen_serial != pen.serial:
        raise CalibrationError(f"calibration.pen_serial={cal.pen_serial!r} is refused: this "
                               f"service's pen is {pen.serial}")
    if cal.simulated != pen.simulated:
        raise CalibrationError(f"calibration.simulated={cal.simulated} is refused: this pen is "
                               f"{'simulated' if pen.simulated else 'real'}")
    now = now or datetime.now(UTC)
    if abs((cal.created_at - now).total_seconds()) > FRESH_S:
        raise CalibrationError(f"calibration.created_at={cal.created_at.isoformat()} is "
                               f"refused: it must be within {FRESH_S:.0f} s of the service's "
                               f"clock ({now.isoformat()}); fit it again and send it at once")
    try:  # as arming would: an expired one saved last would supersede the valid one
        cal.check_for(pen.serial, now, again="calibrate again through the service")
    except CalibrationError as exc:
        name = "expires_at" if now >= cal.expires_at else "created_at"
        raise CalibrationError(f"calibration.{name}={getattr(cal, name).isoformat()} is "
                               f"refused: {str(exc).rstrip('.')}") from None
    return cal  # (the model itself refuses more than VALIDITY_MAX_DAYS of validity)


def _run_of(service: PenService, client: Any, what: str) -> CalibrationRun:
    """This connection's run; a save or end from another connection, or after the pen left
    calibrating, has none."""
    _require_calibrating(service, what)
    run = service.calibration_run
    if run is None or run.client_id != client.id:
        raise CalibrationError(f"{what} is refused: this connection did not begin the current "
                               "calibration; call calibration.begin and measure again")
    return run


def _runs(service: PenService, client: Any) -> CalibrationRun | None:
    run = service.calibration_run
    return run if run is not None and run.client_id == client.id else None


@method("calibration.begin")
async def m_cal_begin(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    await asyncio.to_thread(writable_store, self)  # the save's store, before the pen moves
    await self.drive(client, self.pen.begin_calibration)
    self.calibration_run = CalibrationRun(client.id)  # a new run forgets the last one's ids
    return {"ok": True}


@method("calibration.move")
async def m_cal_move(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    at = await self.drive(client, self.pen.calibration_move, p["actuator_mm"])
    if (run := _runs(self, client)) is not None:
        run.moved(float(p["actuator_mm"]), float(at))
    return {"actuator_mm": at}


@method("calibration.spin")
async def m_cal_spin(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    """The encoder's mean speed, and the pen's frames during the spin (uptime, strokes,
    needle running), so the client counts punctures as the station's workflow does."""
    # as the station's check_spins, before the pen is touched (not two frames: the count)
    check_spin(p["speed_hz"], p["duration_s"], telemetry_rate_hz(self.pen))
    frames: list[tuple[int, int, bool]] = []

    def collect(t: PenTelemetry) -> None:  # the reader thread: append only, bounded
        if len(frames) < MAX_SPIN_FRAMES:
            frames.append((t.uptime_ms, t.strokes, t.needle_running))

    # On receipt: a pen.stop from here on ends this spin. StopsWin's own count (`_asked`) is
    # not needed: the same pen.stop bumps spin_stops (stop_spin) on this loop right after it,
    # and the controller reads spin_stops at the spin's turn and all through it.
    stops = self.pen.spin_stops
    self.pen.add_inline_telemetry_reader(collect)  # as read: never behind a slow listener
    try:  # one of the stops' starts: a pen.stop waits for it to end, the needle stopped
        encoder_hz = await self.stops.start(lambda _asked: self.drive(
            client, self.pen.calibration_spin, p["speed_hz"], p["duration_s"],
            stops_before=stops))
    finally:
        self.pen.remove_inline_telemetry_reader(collect)
    if (run := _runs(self, client)) is not None and len(run.spins) < MAX_SPINS:
        try:  # counted here from the pen's own frames: a client's rate is only compared
            rate = count_punctures(p["speed_hz"], p["duration_s"], frames)
        except CalibrationError:
            rate = None
        run.spins.append(Spin(float(p["speed_hz"]), float(encoder_hz), rate))
    return {"speed_hz": p["speed_hz"], "encoder_hz": encoder_hz,
            "frames": [list(f) for f in frames]}


@method("calibration.read_gauge")
async def m_cal_gauge(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(self.work.read_gauge)


@method("calibration.save")
async def m_cal_save(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    run = _run_of(self, client, "calibration.save")
    cal = check_submitted(self, p["calibration"])
    lim = self.pen.identity.limits if self.pen.identity is not None else None
    check_evidence(cal, run, speed_range_hz=None if lim is None else (lim.speed_min_hz,
                                                                        lim.speed_max_hz))
    who = getattr(client, "name", "") or client.id  # the connection's name, not the payload's
    cal = Calibration.model_validate({**cal.model_dump(), "technician": who})
    await asyncio.to_thread(_save_new, self, cal)
    run.saved_id = cal.calibration_id
    problem = await _install_saved(self, cal.calibration_id)
    return {"ok": True, "calibration_id": cal.calibration_id, "installed": problem is None,
            **({"not_installed": problem} if problem is not None else {})}


async def _install_saved(service: PenService, ident: str) -> str | None:
    """Install what the store holds under `ident` on this host now (`set_calibration`: moves
    nothing, allowed calibrating or idle), so that nothing ending the run afterwards leaves the
    pen on a calibration the store has superseded (restarted, the service installs the store's
    newest). None when installed; else why not (a pen latched meanwhile: an E-stop, a fault),
    for the answer. The latch is never bypassed for it: installed once it is cleared."""
    cal = await asyncio.to_thread(_stored, service, ident)
    try:
        await service.apen.set_calibration(cal)
    except SmpError as exc:
        log.warning("saved calibration not installed yet", calibration_id=ident,
                    reason=str(exc))
        return (f"calibration {ident} is saved but not installed yet: {str(exc).rstrip('.')}; "
                "the service installs it as soon as the pen is idle again (once the latch is "
                "cleared: pen.clear_faults), and no session opens on an older one")
    return None


def _stored(service: PenService, ident: str) -> Calibration:
    """The store's copy of `ident` that a save answered, checked as installing it needs."""
    entry = service_store(service).entry(ident)
    if entry is None:
        raise CalibrationError(f"calibration_id={ident!r} is refused: the service's store has "
                               "no such calibration; send it with calibration.save first")
    cal = entry.calibration
    if cal.simulated and not service.pen.simulated:
        raise CalibrationError(f"calibration {cal.calibration_id} was made on a simulated pen; "
                               "it never drives a real needle")
    cal.check_for(service.pen.serial)
    return cal


def _save_new(service: PenService, cal: Calibration) -> None:
    store = service_store(service)
    if store.entry(cal.calibration_id) is not None:  # a record is never replaced
        raise CalibrationError(f"calibration.calibration_id={cal.calibration_id!r} is refused: "
                               "the service's store already has it; make a new calibration")
    store.save(cal)


@method("calibration.end")
async def m_cal_end(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    ident = p.get("calibration_id")
    if ident is None:  # leave calibrating, keeping the one installed (a save installed its own)
        await self.apen.end_calibration(None)
        if _runs(self, client) is not None:
            self.calibration_run = None
        return {"ok": True, "calibration_id": None}
    run = _runs(self, client)
    if (self.pen.state is not State.CALIBRATING and run is not None and run.saved_id
            and ident == run.saved_id):  # ended from outside after its save (an E-stop)
        cal = await asyncio.to_thread(_stored, self, ident)
        current = self.pen.calibration
        if current is None or current.calibration_id != ident:  # not installed at the save
            await self.apen.set_calibration(cal)  # idle only: a latched pen says clear first
        self.calibration_run = None
        return {"ok": True, "calibration_id": ident, "written_to_pen": False}
    run = _run_of(self, client, "calibration.end with a calibration_id")
    if ident != run.saved_id:  # never a rollback to an older stored calibration
        raise CalibrationError(f"calibration_id={ident!r} is refused: calibration.end installs "
                               "only the calibration calibration.save answered in this run "
                               f"({run.saved_id or 'none saved yet'}); send it with "
                               "calibration.save first")
    cal = await asyncio.to_thread(_stored, self, ident)
    await self.apen.end_calibration(cal)
    self.calibration_run = None
    return {"ok": True, "calibration_id": cal.calibration_id, "written_to_pen": True}


def driver_lost(service: PenService, client_id: str, epoch: int | None = None) -> str | None:
    """Why `client_id` no longer drives the pen (the dead-man rule: gone, released, its lease
    run out, another drives), or None while it does; with `epoch` (the lease's when the work
    began), also once it was lost and drives again under a new claim. Lock-free reads: the
    pen's reader thread asks it on every report while a calibration.auto spins."""
    lease = service.lease
    holder = lease.holder()
    valid = lease.valid()
    if holder == client_id and valid and (epoch is None or lease.epoch == epoch):
        return None
    now = ("it drives again, under a new claim" if holder == client_id and valid
           else "nobody drives the pen now" if holder in (None, client_id)
           else f"{holder} drives it")
    return (f"the driving client {client_id} was lost (disconnected, released, or no heartbeat "
            f"within its lease; {now}), and the service's dead-man rule ends its work")


def auto_settings(params: dict[str, Any]) -> CalibrationSettings:
    """`calibration.auto`'s settings as `smp calibrate` makes them from its options of the
    same names; one left out keeps that option's default."""
    default = CalibrationSettings()
    tolerance_mm = params.get("tolerance_mm", default.fit_tolerance_mm)
    return CalibrationSettings(
        depth_points=params.get("depth_points", default.depth_points),
        fit_tolerance_mm=tolerance_mm, verify_tolerance_mm=tolerance_mm,
        speed_tolerance_pct=params.get("speed_tolerance_pct", default.speed_tolerance_pct),
        validity_days=params.get("valid_days", default.validity_days),
        spin_duration_s=params.get("spin_seconds", default.spin_duration_s))


def auto_calibrate(service: PenService, client_id: str, technician: str,
                   settings: CalibrationSettings) -> dict[str, Any]:
    """In the call worker: the whole `smp calibrate --auto` against the simulator gauge. Like a
    session, it ends as soon as its driving client is lost: the spin stops, no step more, a
    report saying so, nothing saved (`calibration.stopping`)."""
    from smpdevice.calibration.gauges import SimulatorGauge
    from smpdevice.calibration.report import format_report
    from smpdevice.calibration.workflow import run_calibration

    sim = service.work.simulator()  # simulated pens in this process only, with its message
    pen = service.pen
    epoch = service.lease.epoch  # the claim this run works under (as_driver checked it)
    store = writable_store(service)  # before the needle: not after the whole run
    report = run_calibration(pen, SimulatorGauge(sim), technician=technician,
                             settings=settings, store=store,
                             should_stop=lambda: driver_lost(service, client_id, epoch))
    report.problems = [service_words(p) for p in report.problems]  # a save refused late
    lost = driver_lost(service, client_id, epoch)
    if lost is not None and not report.passed:
        log.warning("calibration.auto ended: driver lost", client=client_id)
    cal = pen.calibration
    return {"passed": report.passed, "report": format_report(report),
            "calibration_id": cal.calibration_id if cal and report.passed else None}


@method("calibration.auto")
async def m_cal_auto(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await self.drive(client, auto_calibrate, self, client.id, p["technician"],
                            auto_settings(p))
