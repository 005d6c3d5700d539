"""`run_calibration(..., should_stop=...)` at the edges of its checks (review 11a R01, R02).

The service's watchdog ends `calibrating` from its own thread the moment the driver is lost
(`deadman.stop_and_disarm`); `should_stop` is read live. Here the loss, the watchdog's stop and
(R01) the driver's return all land between two checks, at a chosen gauge reading, or (R02)
during the save. The answer is always the report, never a raw StateError: ended from outside
(nothing saved or installed), or, once the run passed its last check and began saving,
saved and installed. The real controller and simulated pen on virtual time, real SQLite."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.stopping import ENDED_OUTSIDE
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from smpdevice.service.deadman import stop_and_disarm
from tests.smpdevice.virtual_time import virtual_sim

WHY = "the driving client ws-1 was lost"
QUICK = CalibrationSettings(spin_duration_s=0.2)


def _watchdog(ctl: PenController) -> None:
    """What the service's Watchdog thread does on a loss: stop_and_disarm in its own thread."""
    t = threading.Thread(target=stop_and_disarm, args=(ctl, WHY))
    t.start()
    t.join(timeout=30)
    assert not t.is_alive()


@pytest.mark.parametrize("at", ["Zero, reading 2", "Depth point 1", "Depth point 3",
                                "Verify at"])
def test_a_loss_and_a_regained_driver_between_two_checks_end_the_run_with_its_report(
        tmp_path, at):
    """Lost, stopped by the watchdog and driving again before the next check: should_stop
    answers None by then, yet the run ends with the report (the controller found idle under
    it), not with `StateError: cannot move the actuator for calibration while idle`."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        lost = [False]
        done = [False]

        class Gauge(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                if request.label.startswith(at) and not done[0]:
                    done[0] = True
                    lost[0] = True      # the lease lapses
                    _watchdog(ctl)      # the watchdog stops the pen and ends calibrating
                    lost[0] = False     # the client drives again
                return super().read_mm(request)

        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, Gauge(sim.url), technician="qa", settings=QUICK,
                                 store=store, should_stop=lambda: WHY if lost[0] else None)
        text = format_report(report)
        assert done[0], f"no gauge reading {at!r}"
        assert not report.passed and not report.saved, text
        assert any(p.startswith(f"stopped: {ENDED_OUTSIDE}") for p in report.problems), text
        assert store.latest(sim.serial) is None and ctl.calibration is None
        assert ctl.state is State.IDLE


def test_a_loss_during_the_save_leaves_it_saved_and_installed_never_half(tmp_path):
    """The last check passed, then the loss (and the watchdog) came while the store wrote:
    the run is committed: saved, installed (in idle: the pen is at rest), reported passed."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        lost = [False]

        class Store(CalibrationStore):
            def save(self, calibration):  # type: ignore[override]
                lost[0] = True
                _watchdog(ctl)
                return super().save(calibration)

        store = Store(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa",
                                 settings=QUICK, store=store,
                                 should_stop=lambda: WHY if lost[0] else None)
        saved = store.latest(sim.serial)
        text = format_report(report)
        assert report.passed and report.saved and saved is not None, text
        assert ctl.calibration is not None
        assert ctl.calibration.calibration_id == saved.calibration_id
        assert ctl.state is State.IDLE
        assert report.installed_idle and "not written to the pen" in text


def test_without_should_stop_a_failure_of_its_own_is_still_raised(tmp_path):
    """The idle rule is for runs that can be ended from outside (a should_stop): a plain run
    whose calibrating another thread ends still fails loudly, as before."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        done = [False]

        class Gauge(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                if not done[0]:
                    done[0] = True
                    _watchdog(ctl)
                return super().read_mm(request)

        with pytest.raises(Exception, match="while idle"):
            run_calibration(ctl, Gauge(sim.url), technician="qa", settings=QUICK,
                            store=CalibrationStore(tmp_path / "c.sqlite"))


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.integers(0, 40), regained=st.booleans())
def test_a_loss_at_any_gauge_reading_ends_with_a_report_never_half_saved(tmp_path, at,
                                                                          regained):
    """Whichever reading the loss (and the watchdog) comes at, with the driver back or not:
    the answer is a report; nothing is saved, or it is saved and installed and passed."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        lost = [False]
        reads = [0]

        class Gauge(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                if reads[0] == at:
                    lost[0] = True
                    _watchdog(ctl)
                    lost[0] = not regained
                reads[0] += 1
                return super().read_mm(request)

        store = CalibrationStore(tmp_path / f"c{at}{regained}.sqlite")
        report = run_calibration(ctl, Gauge(sim.url), technician="qa", settings=QUICK,
                                 store=store, should_stop=lambda: WHY if lost[0] else None)
        saved = store.latest(sim.serial)
        text = format_report(report)
        if at < reads[0]:  # the loss came: the run ended there
            assert not report.passed and saved is None and ctl.calibration is None, text
        else:  # fewer readings than `at`: no loss, a normal run
            assert report.passed and saved is not None, text
            assert ctl.calibration is not None
            assert ctl.calibration.calibration_id == saved.calibration_id
        assert ctl.state is State.IDLE
