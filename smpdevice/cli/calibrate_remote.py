"""`smp calibrate --service URL` (or SMP_SERVICE): calibrate the pen of a running `smp serve`.

A guided run is the station's own workflow (`calibration.workflow.run_calibration`) with the
same prompts and checks, driving the served pen through the service's `calibration.*` steps
(`RemotePen`). The fit is made here from the technician's readings; the service saves it to its
store (`calibration.save`, which refits and checks it again against the moves and spins it saw,
and records this connection's name, the technician's, as who made it) before `calibration.end`
installs it on the pen, so nothing is ever installed unrecorded. `--auto` runs the whole
calibration inside the service against its simulated pen's gauge.

This CLI is the driving client for the whole run: its heartbeats keep the lease while the
technician reads the gauge, and if it dies the service ends the calibration by itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import click

from smpdevice.control.calibration import Calibration
from smpdevice.control.footswitch import PedalReleased
from smpdevice.control.pen import Capability, HardLimits, PenIdentity
from smpdevice.errors import SmpError
from smpdevice.outcomes import ExitCode, command

if TYPE_CHECKING:
    from smpdevice.calibration.report import CalibrationSettings
    from smpdevice.control import PenController
    from smpdevice.control.states import State
    from smpdevice.service.client import SyncServiceClient

LEASE_MS = 2000  # the driving client's lease while a person reads the gauge


class ServiceCalibrationFailed(SmpError):
    exit_code = ExitCode.CHECK_FAILED


def identity_from(data: dict[str, Any]) -> PenIdentity:
    """`pen.identity`'s `identity` object back into a `PenIdentity` (what the workflow reads)."""
    try:
        names = set(data.get("capabilities") or [])
        caps = Capability(0)
        for c in Capability:
            if c.name in names:
                caps |= c
        return PenIdentity(serial=str(data["serial"]),
                           firmware_version=str(data["firmware_version"]),
                           protocol_version=int(data["protocol_version"]),
                           schema_hash=int(str(data["schema_hash"]), 16),
                           capabilities=caps, limits=HardLimits(**data["limits"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SmpError(f"the service sent a pen identity this smpdevice cannot read ({exc}); "
                       "use the same smpdevice version for `smp serve` and the command line"
                       ) from None


@dataclass(frozen=True)
class SpinFrame:
    """What the workflow reads of a telemetry frame during a spin (puncture counting)."""

    uptime_ms: int
    strokes: int
    needle_running: bool


class RemotePen:
    """The part of `PenController` a calibration workflow uses, over the service. Telemetry
    listeners get the frames of each spin, which the service collects and returns with it."""

    def __init__(self, svc: SyncServiceClient, ident: dict[str, Any]) -> None:
        if ident.get("identity") is None:
            raise SmpError("the service has no pen identity; restart `smp serve`")
        self.svc = svc
        self.identity = identity_from(ident["identity"])
        self.simulated = bool(ident["simulated"])
        self.port_url = str(ident["port"])
        # the served controller's rate (report.telemetry_rate_hz): spins too short to count
        # are refused before step 1 (check_spins); None from an older service
        rate = ident.get("telemetry_hz")
        self.telemetry_hz: float | None = None
        if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
            self.telemetry_hz = float(rate)
        self.last_fault: str | None = None  # as `state` last found it
        self._listeners: list[Callable[[Any], None]] = []

    @property
    def state(self) -> State:
        """The served controller's state, asked (`pen.state`) when a step failed
        (`stopping.pen_lost`); a service that does not answer is a lost link, saying why."""
        from smpdevice.control.states import State  # only then: a client loads no controller

        try:
            answer = self.svc.call("pen.state")
            self.last_fault = answer.get("last_fault")
            return State(answer["state"])
        except Exception as exc:  # asked while reporting another error: never hide that one
            self.last_fault = f"the service does not answer: {str(exc).rstrip('.')}"
            return State.DISCONNECTED

    def add_telemetry_listener(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    def remove_telemetry_listener(self, listener: Callable[[Any], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # called in the caller's thread with each spin's frames: inline already, as the speed step
    # reads them (PenController's inline readers)
    add_inline_telemetry_reader = add_telemetry_listener
    remove_inline_telemetry_reader = remove_telemetry_listener

    def begin_calibration(self) -> None:
        self.svc.call("calibration.begin")

    def calibration_move(self, actuator_mm: float) -> float:
        return float(self.svc.call("calibration.move", actuator_mm=actuator_mm)["actuator_mm"])

    def calibration_spin(self, speed_hz: float, duration_s: float = 1.0) -> float:
        from smpdevice.service.client import ServiceError

        try:
            answer = self.svc.call("calibration.spin", speed_hz=speed_hz, duration_s=duration_s)
        except ServiceError as exc:  # the pedal went up at the served pen: end the run as here
            data = exc.data if isinstance(exc.data, dict) else {}
            if data.get("type") == PedalReleased.__name__:
                raise PedalReleased(str(exc)) from None
            raise
        try:
            frames = [SpinFrame(int(u), int(s), bool(r)) for u, s, r in answer["frames"]]
        except (KeyError, TypeError, ValueError):
            raise SmpError("the service's calibration.spin answer has no readable frames; use "
                           "the same smpdevice version for `smp serve` and the command line"
                           ) from None
        for frame in frames:
            for listener in list(self._listeners):
                listener(frame)
        return float(answer["encoder_hz"])

    def calibration_point_lost(self, actuator_mm: float) -> str | None:
        """After a gauge reading: why it must not be used, or None. The served controller
        still calibrating: its own reconcile latches a pen that left the point (lease, reboot,
        fault), and its hold bound ends a calibration left at one point too long."""
        from smpdevice.control.states import State

        state = self.state
        if state is State.CALIBRATING:
            return None
        return (f"the needle did not stay at actuator {actuator_mm} mm while the gauge was "
                f"read: the served controller is {state.value} "
                f"({self.last_fault or 'the calibration was ended'})")

    def end_calibration(self, calibration: Calibration | None = None) -> None:
        if calibration is None:
            self.svc.call("calibration.end")
        else:  # saved by `ServiceStore.save` just before: the service installs its own copy
            self.svc.call("calibration.end", calibration_id=calibration.calibration_id)


class ServiceStore:
    """`CalibrationStore.save` for the workflow: the service's own store keeps it."""

    def __init__(self, svc: SyncServiceClient, url: str) -> None:
        self.svc = svc
        self.path = f"the calibration store of the service at {url}"

    def save(self, calibration: Calibration) -> None:
        """A refusal by the service (its checks, its store) is the calibration refused: the
        run fails with its report (exit 1); a service gone mid-save is raised as it is."""
        from smpdevice.control.calibration import CalibrationError
        from smpdevice.service.client import ServiceError, ServiceGone

        try:
            self.svc.call("calibration.save", calibration=calibration.model_dump(mode="json"))
        except ServiceGone:
            raise
        except ServiceError as exc:
            raise CalibrationError(f"the service refused calibration.save: {exc}") from None


def service_settings(settings: CalibrationSettings) -> None:
    """A guided run's settings the service's `calibration.save` will take: it checks with the
    station's defaults, so a looser bound would fail only after every reading. SmpError (exit
    2, naming the option) before the first; a tighter bound is the client's own stricter run."""
    from smpdevice.calibration.report import CalibrationSettings

    station = CalibrationSettings()
    for option, mine, theirs, unit in (
            ("--tolerance-mm", max(settings.fit_tolerance_mm, settings.verify_tolerance_mm),
             station.fit_tolerance_mm, "mm"),
            ("--speed-tolerance-pct", settings.speed_tolerance_pct,
             station.speed_tolerance_pct, "%")):
        if mine > theirs:
            raise SmpError(f"{option} {mine:g} is refused with --service: the service saves "
                           f"only calibrations within its own {theirs:g} {unit} (it checks "
                           f"with the station's defaults); give at most {theirs:g} or leave "
                           "it out, or calibrate at the station (--port). Nothing was moved.")


def technician_name(name: str) -> str:
    """Who calibrates, checked as a name (`checks.technician`: the one rule and length of the
    station, the service and the pass log) before the pen moves, not when the result is saved
    after it ran."""
    from smpdevice import checks

    return checks.technician(name)


def _connect(url: str, name: str = "smp calibrate") -> SyncServiceClient:
    """`name` is the connection's name: the service records it as the technician of what this
    connection saves."""
    from smpdevice.service.client import SyncServiceClient

    return SyncServiceClient.connect(url, role="technician", name=name)


def calibrate(url: str, *, auto: bool, technician: str | None, gauge_url: str | None,
              db: str | None, verify_only: bool, settings: CalibrationSettings,
              again_options: list[str] | tuple[str, ...] = ()) -> None:
    """`smp calibrate --service URL`: guided (the technician reads a gauge) or `--auto`.
    `again_options`: the settings options this run was given (`calibrate.given_options`),
    carried by the command printed to run it again."""
    if db:
        raise SmpError(f"--db {db} cannot be used with --service: the service keeps its own "
                       "calibrations; leave it out (or run without --service)")
    if verify_only:
        raise SmpError("--verify-only runs at the station: stop the service and run "
                       "`smp calibrate --verify-only --port PORT`")
    if technician is not None:  # before connecting: the service records it as a name
        technician = technician_name(technician)
    if auto:
        if gauge_url:
            raise SmpError("--auto through the service reads the served simulated pen's own "
                           f"gauge; leave out --gauge {gauge_url}")
        _auto(url, technician, settings)
        return
    service_settings(settings)  # before the first reading, not refused at the save
    _guided(url, technician, gauge_url, settings, again_options)


def _auto(url: str, technician: str | None, settings: CalibrationSettings) -> None:
    with _connect(url) as svc:
        svc.drive(lease_ms=LEASE_MS)  # calibrating moves the pen: only its driving client may
        try:
            result = svc.call("calibration.auto", technician=technician or "auto",
                              depth_points=settings.depth_points,
                              tolerance_mm=settings.fit_tolerance_mm,
                              speed_tolerance_pct=settings.speed_tolerance_pct,
                              valid_days=settings.validity_days,
                              spin_seconds=settings.spin_duration_s)
        finally:
            with contextlib.suppress(Exception):
                svc.release()
    click.echo(result["report"])
    if not result["passed"]:
        raise ServiceCalibrationFailed("the calibration failed and was not saved; see the "
                                       "report above")
    click.echo(f"Saved calibration {result['calibration_id']} (through the service at {url}).")


def _guided(url: str, technician: str | None, gauge_url: str | None,
            settings: CalibrationSettings, again_options: list[str] | tuple[str, ...]) -> None:
    from smpdevice.calibration.gauges import GaugeError
    from smpdevice.calibration.workflow import run_calibration
    from smpdevice.cli.calibrate import gauge_failed, pen_first_step, report_outcome
    from smpdevice.ui.gauges import ManualGauge, open_gauge

    gauge = ManualGauge() if gauge_url in (None, "manual") else open_gauge(gauge_url)
    again = ["--gauge", gauge_url] if gauge_url else []  # to run as printed: the same gauge,
    try:
        if technician is None:
            technician = technician_name("auto" if not gauge.manual else
                                         click.prompt("Technician name"))
        retry = command("smp", "calibrate", "--service", url, *again,
                        "-t", technician, *again_options)  # the same technician and settings
        with _connect(url, technician) as svc:
            pen = RemotePen(svc, svc.call("pen.identity"))
            serial = pen.identity.serial
            svc.drive(lease_ms=LEASE_MS)
            try:
                click.echo(f"Calibrating pen {serial} (firmware "
                           f"{pen.identity.firmware_version}) through the service at {url} "
                           f"with the {gauge.description}.")
                store = ServiceStore(svc, url)
                # duck-typed: the workflow uses only what RemotePen and ServiceStore provide
                try:
                    report = run_calibration(cast("PenController", pen), gauge,
                                             technician=technician, settings=settings,
                                             store=cast(Any, store), echo=click.echo)
                except GaugeError as exc:  # one line, exit 1, as at the station
                    raise gauge_failed(exc, f"calibration of pen {serial}", retry) from exc
                first = "" if report.passed else pen_first_step(pen.state, service=url)
            finally:
                with contextlib.suppress(Exception):  # gone: the service stops it by itself
                    svc.release()
    finally:
        gauge.close()
    report_outcome(report, serial, retry=retry, saved_to=store.path, first=first)
