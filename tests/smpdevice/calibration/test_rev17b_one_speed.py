"""Review 17 (b17b, fixed): the Python API saved a calibration whose speed check ran at one
speed. docs/service.md: a calibration without the speed check is refused "as the station never
saves one: no rate checks, no `speed_error_pct`, or rate checks at fewer than the station's
three speeds"; `run_calibration(..., settings=CalibrationSettings(speeds_hz=(100,)),
store=...)` spun once and saved, and `smp run` armed on it. With a store, `speeds_hz` must be
None (the station's three) or hold one speed near each of them (15, 50 and 85 % of the pen's
range): anything else is an `InvalidArgument` before the pen moves, nothing saved."""

from __future__ import annotations

import pytest

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from tests.smpdevice.virtual_time import virtual_sim


def station_speeds_hz(lo: float, hi: float) -> list[float]:
    """The station's three (docs/technicians.md step 3), in whole Hz as it spins them."""
    return [round(lo + f * (hi - lo)) for f in (0.15, 0.5, 0.85)]


def _run(tmp_path, speeds) -> tuple[Exception | None, int, list, object]:
    store = CalibrationStore(tmp_path / "c.sqlite")
    strokes: list[int] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        lim = ctl.identity.limits
        speeds_hz = speeds(lim.speed_min_hz, lim.speed_max_hz)
        ctl.add_telemetry_listener(lambda t: strokes.append(t.strokes))
        try:
            report = run_calibration(ctl, SimulatorGauge(sim), technician="ana", store=store,
                                     settings=CalibrationSettings(spin_duration_s=0.3,
                                                                  speeds_hz=speeds_hz))
            raised = None
        except Exception as exc:
            raised, report = exc, None
        serial = ctl.identity.serial
    saved = CalibrationStore(tmp_path / "c.sqlite", readonly=True).list(serial)
    return raised, (max(strokes) - strokes[0]) if strokes else 0, saved, report


NOT_THE_STATIONS = {
    "one-speed": lambda lo, hi: (100.0,),
    "two-speeds": lambda lo, hi: (60.0, 120.0),
    "one-speed-three-times": lambda lo, hi: (100.0, 100.0, 100.0),
    "three-near-one-point": lambda lo, hi: (100.0, 101.0, 102.0),
    "low-and-high-missing-middle": lambda lo, hi: (station_speeds_hz(lo, hi)[0],
                                                   station_speeds_hz(lo, hi)[2], hi),
}


@pytest.mark.parametrize("speeds", NOT_THE_STATIONS.values(), ids=NOT_THE_STATIONS.keys())
def test_a_speed_check_that_is_not_the_stations_is_never_saved(tmp_path, speeds):
    raised, spun, saved, _ = _run(tmp_path, speeds)
    assert not saved, (f"saved {saved[0].calibration_id} with rate checks "
                       f"{saved[0].rate_checks}: not the station's three speeds")
    assert isinstance(raised, InvalidArgument) and "speeds_hz" in str(raised), raised
    assert spun == 0, f"the needle made {spun} strokes before the refusal"


def test_the_stations_own_speeds_given_explicitly_are_saved(tmp_path):
    raised, _, saved, report = _run(tmp_path, lambda lo, hi: tuple(station_speeds_hz(lo, hi)))
    assert raised is None and report.passed, (raised, report and report.problems)
    assert len(saved) == 1 and len({hz for hz, _ in saved[0].rate_checks}) == 3
