"""Session 21 (review 20 F3): a calibration arms the pen for its depth moves.

The pen holds the needle out past the tip only while ARMED or RUNNING (docs/protocol.md
section 7): a SET_SETPOINTS in IDLE is stored and moves nothing. So every calibration move
arms the pen (with a lease first: the engine renews it while calibrating), the needle is out,
never spinning, while the gauge reads it, and however the run ends (passed, aborted at a
prompt, an E-stop mid-move, a lost link, a host that stops renewing) the pen ends disarmed and
retracted, by the host's stop or by its own lease. The real controller and simulated pen over
their byte stream, on virtual time, real SQLite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.timing import RETRACT_MAX_MS
from simulators import PenSimulator
from smpdevice.calibration.gauges import CalibrationAborted, GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationReport, CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from smpdevice.control.pen import PenTelemetry
from tests.smpdevice.virtual_time import virtual_sim

QUICK = CalibrationSettings(spin_duration_s=0.2)
OUT = (FirmwareState.ARMED, FirmwareState.RUNNING)  # the only states with the needle out
RETRACT_S = RETRACT_MAX_MS / 1000


class _Gauge(SimulatorGauge):
    """The simulator's gauge, noting the pen as each reading finds it; `at(label)` runs a
    hook at the first prompt whose label starts so (a technician's action there)."""

    def __init__(self, sim: PenSimulator, at: str = "", hook: Callable[[], None] | None = None):
        super().__init__(sim)
        self.sim, self.at, self.hook = sim, at, hook
        self.seen: list[tuple[str, FirmwareState, bool, int]] = []

    def read_mm(self, request: GaugeRequest) -> float:
        fw = self.sim.firmware
        self.seen.append((request.label, fw.state, fw.physics.driven, fw.depth_cmd_um))
        if self.hook is not None and request.label.startswith(self.at):
            hook, self.hook = self.hook, None
            hook()
        return super().read_mm(request)


def _reports(ctl: PenController) -> list[PenTelemetry]:
    seen: list[PenTelemetry] = []
    ctl.add_inline_telemetry_reader(seen.append)
    return seen


def _never_out_unless_armed(reports: list[PenTelemetry]) -> None:
    assert reports
    out = [(t.telemetry_seq, t.state.name, t.actuator_cmd_mm) for t in reports
           if t.state not in OUT and t.actuator_cmd_mm != 0]
    assert not out, f"the actuator was driven out with the pen not armed: {out[:3]}"


def _every_reading_armed_and_still(gauge: _Gauge) -> None:
    assert gauge.seen
    wrong = [s for s in gauge.seen if s[1] is not FirmwareState.ARMED or s[2]]
    assert not wrong, f"a gauge reading with the pen not armed, or the needle spinning: {wrong}"


def _at_rest(sim: PenSimulator, state: FirmwareState = FirmwareState.IDLE) -> None:
    sim.time.sleep(RETRACT_S + 0.05)
    fw = sim.firmware
    assert fw.state is state
    assert fw.physics.position_um == 0 and sim.gauge.read_mm() == 0.0  # retracted


def test_a_passed_run_arms_each_depth_move_and_ends_idle_and_retracted(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        reports = _reports(ctl)
        gauge = _Gauge(sim)
        store = CalibrationStore(tmp_path / "c.sqlite")
        report = run_calibration(ctl, gauge, technician="qa", store=store)
        assert report.passed and report.saved, format_report(report)
        _every_reading_armed_and_still(gauge)
        assert all(cmd > 0 for label, _, _, cmd in gauge.seen if not label.startswith("Zero"))
        assert ctl.state is State.IDLE
        _at_rest(sim)
        _never_out_unless_armed(reports)
        assert any(t.state is FirmwareState.RUNNING for t in reports)  # the speed check ran
        assert reports[-1].actuator_cmd_mm == 0 and reports[-1].state is FirmwareState.IDLE


def test_a_technician_long_at_a_prompt_keeps_the_lease_and_the_needle_at_the_point(tmp_path):
    """The needle must be out to be read; the host renews the lease all the while (as in a
    session's `armed`), so a long look at the gauge ends nothing."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        renewals: list[int] = []

        def pause() -> None:
            before = sim.firmware.executed[MsgType.LEASE_RENEW]
            sim.time.sleep(30 * ctl.lease_ms / 1000)
            renewals.append(sim.firmware.executed[MsgType.LEASE_RENEW] - before)
            assert sim.firmware.state is FirmwareState.ARMED
            assert sim.firmware.lease_remaining_ms() > 0

        gauge = _Gauge(sim, "Depth point 2", pause)
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK)
        assert report.passed, format_report(report)
        assert renewals and renewals[0] >= 30, renewals  # renewed at a fraction of the lease
        assert ctl.state is State.IDLE
        _at_rest(sim)


def test_an_abort_at_a_prompt_ends_idle_and_retracted(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        reports = _reports(ctl)

        def abort() -> None:
            raise CalibrationAborted()

        gauge = _Gauge(sim, "Depth point 2", abort)
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK)
        assert report.aborted and report.calibration is None
        assert gauge.seen[-1][1] is FirmwareState.ARMED  # out while it was being read
        assert ctl.state is State.IDLE
        _at_rest(sim)
        _never_out_unless_armed(reports)


def test_an_estop_mid_move_ends_the_run_with_the_pen_retracted(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        reports = _reports(ctl)
        fw = sim.firmware
        done: list[CalibrationReport] = []
        runner = threading.Thread(target=lambda: done.append(run_calibration(
            ctl, _Gauge(sim), technician="qa", settings=QUICK)))
        runner.start()
        try:  # armed, the actuator on its way out to a point
            sim.time.wait_until(lambda: fw.state is FirmwareState.ARMED
                                and abs(fw.physics.position_um - fw.depth_cmd_um) > 100,
                                timeout_s=5.0)
            ctl.estop()
        finally:
            runner.join(timeout=60)
        assert not runner.is_alive() and done
        report = done[0]
        assert report.calibration is None and not report.passed
        assert any(p.startswith("stopped:") for p in report.problems), format_report(report)
        assert ctl.state is State.ESTOP
        _at_rest(sim, FirmwareState.ESTOP)
        _never_out_unless_armed(reports)


def test_a_lost_link_at_a_prompt_leaves_the_pen_to_retract_by_its_lease(tmp_path):
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        fw = sim.firmware
        lost_at: list[float] = []

        def unplug() -> None:
            assert fw.state is FirmwareState.ARMED and fw.physics.position_um > 0
            sim.disconnect()  # nothing the host sends reaches the pen from here
            lost_at.append(sim.clock.now())

        gauge = _Gauge(sim, "Depth point 2", unplug)
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK)
        assert report.calibration is None
        assert any("link to the pen was lost" in p for p in report.problems), report.problems
        assert ctl.state is State.DISCONNECTED
        sim.time.wait_until(lambda: fw.state is FirmwareState.IDLE,
                            timeout_s=ctl.lease_ms / 1000 + 0.01)
        assert sim.clock.now() - lost_at[0] <= ctl.lease_ms / 1000 + 0.01
        _at_rest(sim)


def test_a_host_that_stops_renewing_leaves_a_pen_that_retracts_within_a_lease(tmp_path):
    """The pen's own safety: the host's renewals stop reaching it while the technician looks
    at a point; the pen disarms and retracts within one lease, and the host, seeing its pen
    leave `armed` by itself under a reading, latches a fault rather than read on."""
    with virtual_sim(seed=7) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        fw = sim.firmware
        states: list[FirmwareState] = []

        def renewals_lost() -> None:
            sim.link.drop_inbound(MsgType.LEASE_RENEW)
            sim.time.sleep(ctl.lease_ms / 1000 + RETRACT_S + 0.02)
            states.append(fw.state)

        gauge = _Gauge(sim, "Depth point 2", renewals_lost)
        report = run_calibration(ctl, gauge, technician="qa", settings=QUICK)
        assert states == [FirmwareState.IDLE]
        assert report.calibration is None and not report.passed
        assert ctl.state is State.FAULT, ctl.state
        assert "went IDLE by itself while calibrating" in str(ctl.last_fault), ctl.last_fault
        _at_rest(sim)
