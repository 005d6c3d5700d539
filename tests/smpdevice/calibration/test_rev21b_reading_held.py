"""Session 21b (review of a0a8b15): a gauge reading counts only if the needle stayed at its
point while it was read, and the needle is never held out at one point without bound.

A pen that left the point under an open prompt (its lease lapsed, a brownout, the cartridge
pulled) latched the controller, but the reading typed afterwards was still used: at the last
verify point nothing moves the actuator again, so the run saved that calibration (and `smp run`
took it). And a run stuck at a prompt (nobody answers, a gauge that never does) kept the pen
armed, the needle out, renewing its lease forever. The real controller and simulated pen over
their byte stream, on virtual time, real SQLite.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.timing import RETRACT_MAX_MS
from simulators import PenSimulator
from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from tests.smpdevice.virtual_time import virtual_sim

QUICK = CalibrationSettings(spin_duration_s=0.2)
RETRACT_S = RETRACT_MAX_MS / 1000
LAST_VERIFY = "Verify at 1.5"  # the automatic gauge's last check depth


class _ReadThen(SimulatorGauge):
    """Reads the gauge (the needle at the point: a good reading), then, at the first prompt
    whose label starts with `at`, runs `after` before the reading is handed back (the
    technician reads, something happens to the pen, then the value is typed)."""

    def __init__(self, sim: PenSimulator, at: str, after: Callable[[], None]) -> None:
        super().__init__(sim)
        self.at, self.after, self.sim = at, after, sim
        self.fired: list[tuple[str, float]] = []

    def read_mm(self, request: GaugeRequest) -> float:
        value = super().read_mm(request)
        if not self.fired and request.label.startswith(self.at):
            self.fired.append((request.label, value))
            self.after()
        return value


def _at_rest(sim: PenSimulator) -> None:
    sim.time.sleep(RETRACT_S + 0.05)
    assert sim.firmware.physics.position_um == 0 and sim.gauge.read_mm() == 0.0


@pytest.mark.parametrize("what", ["lease_lapse", "brownout", "cartridge_pulled"])
def test_a_pen_that_leaves_the_last_verify_point_under_its_prompt_saves_nothing(tmp_path, what):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        def leave() -> None:
            if what == "lease_lapse":
                sim.link.drop_inbound(MsgType.LEASE_RENEW)
            elif what == "brownout":
                sim.inject("brownout")
                sim.time.sleep(0.01)
                sim.clear("brownout")
            else:
                sim.inject("cartridge_removed")
            sim.time.sleep(ctl.lease_ms / 1000 + RETRACT_S + 0.1)  # the technician types

        gauge = _ReadThen(sim, LAST_VERIFY, leave)
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK, store=store)
        assert gauge.fired and gauge.fired[0][1] > 1.0  # a good reading, taken before
        assert not report.passed and report.calibration is None, format_report(report)
        assert not report.saved and store.list() == []  # never saved, `smp run` takes none
        assert any(p.startswith("stopped: the pen") for p in report.problems), report.problems
        assert ctl.state is State.FAULT  # latched: the next calibration needs a clear
        _at_rest(sim)


def test_a_prompt_left_open_past_the_hold_bound_retracts_and_ends_the_run(tmp_path):
    """The run stuck at a prompt, the host alive: the controller renews no longer than its
    hold bound; it ends the calibration itself (retracted, idle), and the reading that comes
    later is not used."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.calibration_hold_max_s = 3.0
        fw = sim.firmware
        seen: dict[str, object] = {}

        def stuck() -> None:
            sim.time.sleep(2.5)  # within the bound: still armed, at the point, renewed
            seen["within"] = (fw.state, fw.lease_remaining_ms() > 0, fw.physics.position_um)
            sim.time.sleep(0.5 + RETRACT_S + 0.1)
            seen["past"] = (fw.state, fw.physics.position_um, ctl.state)
            renewals = fw.executed[MsgType.LEASE_RENEW]
            sim.time.sleep(10 * ctl.lease_ms / 1000)  # and nothing renews it any more
            seen["renewed"] = fw.executed[MsgType.LEASE_RENEW] - renewals

        gauge = _ReadThen(sim, "Depth point 2", stuck)
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK, store=store)
        state, leased, position_um = seen["within"]  # type: ignore[misc]
        assert state is FirmwareState.ARMED and leased and position_um > 0, seen
        assert seen["past"] == (FirmwareState.IDLE, 0.0, State.IDLE), seen
        assert seen["renewed"] == 0, seen
        assert not report.passed and report.calibration is None and store.list() == []
        assert any("held out at actuator" in p and "3 s" in p for p in report.problems), \
            report.problems
        assert ctl.state is State.IDLE  # no latch: a new run may begin at once
        _at_rest(sim)


def test_the_hold_bound_counts_from_each_move_so_a_slow_run_passes(tmp_path):
    """Every point gets its own bound: a technician who takes most of it at every prompt
    still calibrates (the needle out at each point only while it is read)."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.calibration_hold_max_s = 1.0

        class Slow(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                sim.time.sleep(0.6)  # the bound counts from the ARM: settling too
                return super().read_mm(request)

        report = run_calibration(ctl, Slow(sim), technician="qa", settings=QUICK)
        assert report.passed, format_report(report)
        assert ctl.state is State.IDLE
        _at_rest(sim)


@pytest.mark.parametrize(("served", "used"), [("calibrating", True), ("idle", False),
                                               ("fault", False)])
def test_a_guided_run_through_a_service_checks_each_reading_as_well(served, used):
    """`smp calibrate --service`: the served controller's own reconcile and hold bound act
    there; the client asks its state after each reading (`pen.state`, as `pen_lost` does)
    and uses the reading only while it is still calibrating."""
    from smpdevice.cli.calibrate_remote import RemotePen

    class Service:
        def call(self, method: str, **params: object) -> dict[str, object]:
            assert method == "pen.state"
            return {"state": served, "last_fault": None if served != "fault" else "a jam"}

    pen = RemotePen.__new__(RemotePen)
    pen.svc, pen._listeners, pen.last_fault = Service(), [], None
    why = pen.calibration_point_lost(0.8)
    assert (why is None) is used, why
    if not used:
        assert f"the served controller is {served}" in str(why)
