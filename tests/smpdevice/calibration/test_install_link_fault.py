"""`calibration.stopping.install` after the save, when the link fails (READ8 item 7).

The run passed and its calibration is saved; then the pen stops answering, so the stop that
ends `calibrating` (`end_calibration`: NEEDLE_STOP, RETRACT, DISARM, CALIBRATION_WRITE) is
never confirmed and the controller latches a fault. Before, that LinkError escaped
`run_calibration` after the save, and the report (the only account of a saved calibration) was
lost. Now the answer is the report: saved, not installed, saying so. The real controller and
simulated pen on virtual time, real SQLite."""

from __future__ import annotations

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from tests.smpdevice.virtual_time import virtual_sim

QUICK = CalibrationSettings(spin_duration_s=0.2)


def test_a_link_fault_after_the_save_leaves_it_saved_not_installed_with_its_report(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        cut = [False]

        class Store(CalibrationStore):
            def save(self, calibration):  # type: ignore[override]
                super().save(calibration)
                cut[0] = True
                sim.link.drop_inbound()  # host -> pen: nothing gets through from now on

        store = Store(tmp_path / "c.sqlite")
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="qa",
                                 settings=QUICK, store=store)
        sim.link.clear_inbound()
        text = format_report(report)
        saved = store.latest(sim.serial)
        assert cut[0], "the run never reached its save"
        assert sim.link.stats["dropped_frames_in"] >= 1
        assert report.saved and saved is not None, text
        assert report.calibration is not None
        assert saved.calibration_id == report.calibration.calibration_id
        assert not report.passed and not report.installed_idle, text
        assert any("was not installed" in p for p in report.problems), text
        assert "saved but not installed" in text
        assert ctl.calibration is None  # never installed unconfirmed
        assert ctl.state is not State.CALIBRATING and ctl.state is not State.RUNNING
