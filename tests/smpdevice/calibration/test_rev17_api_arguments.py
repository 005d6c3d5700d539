"""Review 17 (tech): `run_calibration` (and `run_verify`) check every argument before the pen
is touched. docs/integration.md: an argument of the wrong type is `InvalidArgument`, "Nothing
was sent". The technician was checked only when the calibration was built after the whole
run (zero, depth, the needle spun at three speeds, verify): `technician=5`, a name with a
newline or an empty one lost every gauge reading of a guided run."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.verify import run_verify
from smpdevice.calibration.workflow import run_calibration
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.control.states import State
from tests.smpdevice.virtual_time import virtual_sim

QUICK = CalibrationSettings(spin_duration_s=0.3)


def refused_without_moving(call: Callable[[PenController, SimulatorGauge], object]
                           ) -> tuple[InvalidArgument, int, int]:
    """The InvalidArgument `call` raised, the strokes the needle made and the actuator
    positions the pen reported meanwhile."""
    seen: list[tuple[float, int]] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.add_telemetry_listener(lambda t: seen.append((round(t.actuator_mm, 3), t.strokes)))
        with pytest.raises(InvalidArgument) as err:
            call(ctl, SimulatorGauge(sim))
        assert ctl.state is State.IDLE
    start = seen[0][1] if seen else 0
    strokes = max((s for _, s in seen), default=0) - start
    return err.value, strokes, len({a for a, _ in seen})


@pytest.mark.parametrize("technician", [5, "ana\nbob", "", None, "a" * 201],
                         ids=["int", "newline", "empty", "none", "too-long"])
def test_a_bad_technician_is_refused_before_the_pen_moves(technician):
    err, strokes, positions = refused_without_moving(
        lambda ctl, gauge: run_calibration(ctl, gauge, technician=technician, settings=QUICK))
    assert "technician" in str(err) and "nothing was sent" in str(err), err
    assert strokes == 0, f"the needle made {strokes} strokes for a refused technician"
    assert positions <= 1, f"the actuator went to {positions} positions"


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"settings": {"spin_duration_s": 0.3}}, "settings"),
    ({"store": "calibrations.sqlite"}, "store"),
    ({"echo": "print"}, "echo"),
    ({"should_stop": 5}, "should_stop"),
    ({"settings": CalibrationSettings(run_speed=False), "store": "STORE"}, "run_speed"),
], ids=["settings-dict", "store-path", "echo-text", "should-stop-int", "no-speed-saved"])
def test_every_other_argument_is_checked_before_the_pen_moves(tmp_path, kwargs, named):
    if kwargs.get("store") == "STORE":  # a real store: a depth-only run is never saved
        kwargs = {**kwargs, "store": CalibrationStore(tmp_path / "c.sqlite")}
    err, strokes, positions = refused_without_moving(
        lambda ctl, gauge: run_calibration(ctl, gauge, technician="ana", **kwargs))
    assert named in str(err) and "nothing was sent" in str(err).lower(), err
    assert strokes == 0 and positions <= 1
    db = tmp_path / "c.sqlite"
    assert not db.exists() or CalibrationStore(db).list() == []


def test_a_gauge_that_cannot_read_is_refused_before_the_pen_moves():
    err, strokes, positions = refused_without_moving(
        lambda ctl, gauge: run_calibration(ctl, "tcp://127.0.0.1:7001",  # type: ignore[arg-type]
                                           technician="ana", settings=QUICK))
    assert "gauge" in str(err) and strokes == 0 and positions <= 1


def test_run_verify_refuses_what_is_no_calibration_before_the_pen_moves():
    err, strokes, positions = refused_without_moving(
        lambda ctl, gauge: run_verify(ctl, gauge, {"offset_mm": 0.0}))  # type: ignore[arg-type]
    assert "calibration" in str(err) and strokes == 0 and positions <= 1
