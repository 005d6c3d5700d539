"""The arguments of `run_calibration` and `run_verify`, checked before the pen is touched:
met after the run (a technician that is no name, a store that cannot save) they would lose every
gauge reading of a guided run, with the needle spun for a call that was refused. Each refusal is
one `InvalidArgument` naming the argument and what is allowed; nothing is sent to the pen."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from smpdevice import checks
from smpdevice.control.calibration import Calibration

MIN_STATION_SPEEDS = 3  # the station's speed check: 15, 50 and 85 % of the pen's range


@contextlib.contextmanager
def _nothing_sent() -> Iterator[None]:
    try:
        yield
    except checks.InvalidArgument as exc:
        raise checks.InvalidArgument(f"{str(exc).rstrip('.')}; nothing was sent to the "
                                     "pen.") from None


def run_arguments(gauge: object, technician: object, settings: object, store: object,
                  echo: object, should_stop: object) -> str:
    """The checked technician; InvalidArgument for the first argument of the wrong kind."""
    with _nothing_sent():
        name = checks.technician(technician)
        _common(gauge, settings, echo)
        if store is not None and not callable(getattr(store, "save", None)):
            raise checks.InvalidArgument(
                f"store={type(store).__name__} is refused: it has no save(); allowed: a "
                "CalibrationStore, or None to save nothing")
        if store is not None and getattr(store, "readonly", False) is True:
            raise checks.InvalidArgument(
                f"store=CalibrationStore({str(getattr(store, 'path', ''))!r}, readonly=True) "
                "is refused: a read-only store cannot save the calibration; allowed: a "
                "writable CalibrationStore, or None to save nothing")
        checks.callback_or_none("should_stop", should_stop,
                                "a function returning why the run must end")
        if store is not None and settings is not None and not getattr(settings, "run_speed",
                                                                       True):
            raise checks.InvalidArgument(
                "settings.run_speed=False with a store is refused: a run without the speed "
                "check has no encoder speed and no puncture rate accuracy, so it is never "
                "saved as a calibration; allowed: run_speed=True (the whole run, saved), or "
                "store=None (a depth-only run, installed on this controller only: its report "
                "says so)")
        _speeds_with_store(settings, store)
    writable = getattr(store, "require_writable", None)  # a CalibrationStore's (not a remote)
    if callable(writable):
        writable()  # a locked or read-only file: refused now, not at the save
    return name


def _speeds_with_store(settings: object, store: object) -> None:
    """A saved calibration ran the station's speed check: three speeds at least (the pen's
    station speeds themselves are checked once its limits are known, `station_speeds`)."""
    speeds = getattr(settings, "speeds_hz", None)
    if store is None or speeds is None or len(set(speeds)) >= MIN_STATION_SPEEDS:
        return
    raise checks.InvalidArgument(
        f"settings.speeds_hz={tuple(speeds)!r} with a store is refused: a saved calibration's "
        f"speed check runs at the station's {MIN_STATION_SPEEDS} speeds (15, 50 and 85 % of the "
        "pen's range); allowed: speeds_hz=None (those three), or store=None to save nothing")


def station_speeds(settings: object, store: object, speed_min_hz: float,
                   speed_max_hz: float) -> None:
    """With a store, settings.speeds_hz (if given) must hold a speed near each of the
    station's three (`speed_step.missing_station_speeds`); InvalidArgument, nothing sent."""
    from smpdevice.calibration.speed_step import missing_station_speeds

    speeds = getattr(settings, "speeds_hz", None)
    if store is None or speeds is None:
        return
    missing = missing_station_speeds(speeds, speed_min_hz, speed_max_hz)
    if missing:
        raise checks.InvalidArgument(
            f"settings.speeds_hz={tuple(speeds)!r} with a store is refused: none is near "
            f"{', '.join(f'{hz:g}' for hz in missing)} Hz, the station's speeds for this pen "
            f"(15, 50 and 85 % of {speed_min_hz:g}..{speed_max_hz:g} Hz); allowed: "
            "speeds_hz=None, or store=None to save nothing; nothing was sent to the pen.")


def verify_calibration(calibration: object) -> None:
    with _nothing_sent():
        checks.instance("calibration", calibration, Calibration,
                        "a Calibration (CalibrationStore().latest(serial), or a run's)")


def verify_arguments(gauge: object, settings: object, echo: object) -> None:
    with _nothing_sent():
        _common(gauge, settings, echo)


def _common(gauge: object, settings: object, echo: object) -> None:
    from smpdevice.calibration.report import CalibrationSettings

    if not callable(getattr(gauge, "read_mm", None)):
        raise checks.InvalidArgument(
            f"gauge={type(gauge).__name__} is refused: it has no read_mm(request); allowed: a "
            "gauge (SimulatorGauge, TcpGauge, ManualGauge, or smpdevice.ui.gauges.open_gauge"
            "(...))")
    for attr, kind, what in (("description", str, "a text naming the gauge (the report's)"),
                             ("manual", bool, "True when a person types the readings")):
        if not isinstance(getattr(gauge, attr, None), kind):
            raise checks.InvalidArgument(
                f"gauge={type(gauge).__name__} is refused: its {attr} is "
                f"{type(getattr(gauge, attr, None)).__name__}, not {what}; allowed: a gauge "
                "(SimulatorGauge, TcpGauge, ManualGauge, or smpdevice.ui.gauges.open_gauge"
                "(...)), or one with read_mm(request), description and manual")
    checks.instance("settings", settings, (CalibrationSettings, type(None)),
                    "a CalibrationSettings, or None for the defaults")
    if not callable(echo):
        raise checks.InvalidArgument(
            f"echo={type(echo).__name__} is refused: it cannot be called; allowed: a function "
            "taking one line of text (print, click.echo)")
