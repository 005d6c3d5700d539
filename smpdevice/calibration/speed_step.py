"""Step 3 of a calibration run, the speed check (`CalibrationSteps` in `workflow` is the
whole run): the commanded speed against the encoder (and a tachometer if a person has one),
and the punctures the pen counted per second against the set speed (puncture rate accuracy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from smpdevice.calibration.accuracy import (
    PunctureRateCheck,
    RatePoint,
    count_punctures,
    count_window_s,
)
from smpdevice.calibration.gauges import Gauge, RedoPoint
from smpdevice.calibration.report import CalibrationReport, CalibrationSettings
from smpdevice.calibration.speed import SpeedCheck, SpeedSample, check_speed
from smpdevice.calibration.stopping import StopCheck
from smpdevice.control.footswitch import PedalReleased
from smpdevice.control.states import StateError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from smpdevice.control import PenController
    from smpdevice.control.pen import PenIdentity, PenTelemetry


STATION_FRACTIONS = (0.15, 0.5, 0.85)  # of the pen's speed range: the station's three speeds
# A rate is at a station speed within this much: the station rounds its speeds to whole Hz
STATION_SPEED_SLACK_HZ = 1.0


def station_speeds_hz(speed_min_hz: float, speed_max_hz: float) -> list[float]:
    """The speeds the station's speed check spins at (whole Hz), for a pen's range."""
    span = speed_max_hz - speed_min_hz
    return [round(speed_min_hz + f * span) for f in STATION_FRACTIONS]


def missing_station_speeds(set_hz: Iterable[float], speed_min_hz: float,
                           speed_max_hz: float) -> list[float]:
    """The station's speeds (`station_speeds_hz`) none of `set_hz` is near: a speed check
    that holds none is not the station's (three speeds 1 Hz apart test one point only)."""
    seen = list(set_hz)
    span = speed_max_hz - speed_min_hz
    return [station for f, station in zip(STATION_FRACTIONS,
                                          station_speeds_hz(speed_min_hz, speed_max_hz),
                                          strict=True)
            if not any(abs(hz - (speed_min_hz + f * span)) <= STATION_SPEED_SLACK_HZ
                       for hz in seen)]


def pen_identity(ctl: PenController) -> PenIdentity:
    if ctl.identity is None:
        raise StateError("not connected to a pen: connect first, then calibrate")
    return ctl.identity


class SpeedSteps:
    """The speed step of `CalibrationSteps` (which sets these attributes)."""

    ctl: PenController
    gauge: Gauge
    settings: CalibrationSettings
    echo: Callable[[str], None]
    stop: StopCheck

    # -- speed --------------------------------------------------------------------------
    def speeds_hz(self) -> list[float]:
        if self.settings.speeds_hz:
            return list(self.settings.speeds_hz)
        lim = pen_identity(self.ctl).limits
        return station_speeds_hz(lim.speed_min_hz, lim.speed_max_hz)

    def speed(self, report: CalibrationReport) -> SpeedCheck:
        speeds = self.speeds_hz()
        self.echo(f"Step 3, speed: {', '.join(f'{s:g}' for s in speeds)} Hz, off the skin.")
        lim = pen_identity(self.ctl).limits
        ask = self.settings.ask_tachometer and hasattr(self.gauge, "read_tachometer_hz")
        samples: list[SpeedSample] = []
        rates: list[RatePoint] = []
        while len(samples) < len(speeds):
            commanded = speeds[len(samples)]
            try:
                encoder, rate = self._spin_and_count(commanded)
            except PedalReleased:  # the run ends here: what was measured goes in the report
                self._speed_results(report, samples, rates, measured_all=False)
                raise
            tach = None
            if ask:
                try:
                    tach = self.gauge.read_tachometer_hz(  # type: ignore[attr-defined]
                        commanded, 0.0, 2 * lim.speed_max_hz
                    )
                except RedoPoint:
                    if samples:
                        self.echo(f"  redoing {samples.pop().commanded_hz:g} Hz")
                    continue
            samples.append(SpeedSample(commanded, encoder, tach))
            rates = [*rates[: len(samples) - 1], rate]  # a redone speed replaces its count
            self.echo(f"  {commanded:g} Hz: encoder {encoder:.2f} Hz"
                      + (f", tachometer {tach:.2f} Hz" if tach is not None else ""))
        return self._speed_results(report, samples, rates)

    def _speed_results(self, report: CalibrationReport, samples: list[SpeedSample],
                       rates: list[RatePoint], *, measured_all: bool = True) -> SpeedCheck:
        check = check_speed(samples, self.settings.speed_tolerance_pct)
        report.speed = check
        report.problems.extend(check.problems())
        if rates or measured_all:
            report.puncture_rate = PunctureRateCheck(tuple(rates),
                                                     self.settings.speed_tolerance_pct)
            report.problems.extend(report.puncture_rate.problems())
        return check

    def _spin_and_count(self, set_hz: float) -> tuple[float, RatePoint]:
        """Spin at `set_hz` long enough for one puncture to be within the bound; the mean
        encoder speed, and the punctures the pen counted per second after spin-up."""
        duration_s = count_window_s(set_hz, self.settings.speed_tolerance_pct,
                                    self.settings.spin_duration_s)
        frames: list[PenTelemetry] = []
        listen = frames.append
        # as read, on the reading thread: the listeners' shared queue, held by a slow display,
        # lent this spin the previous spin's frames, or none of its own (review 22a)
        self.ctl.add_inline_telemetry_reader(listen)
        try:
            with self.stop.watching_spin(self.ctl) as stops:
                encoder = self.ctl.calibration_spin(set_hz, duration_s, **stops)
        finally:
            self.ctl.remove_inline_telemetry_reader(listen)
        return encoder, count_punctures(
            set_hz, duration_s, [(t.uptime_ms, t.strokes, t.needle_running) for t in frames])
