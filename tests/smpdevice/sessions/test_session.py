"""Sessions played against the simulator, with every pass in the pass log.

On the simulator's virtual clock (the session reads time from the controller's clock); only the
kill -9 test runs a real host process over a real pty, on wall time (`realtime`)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_protocol.codes import Fault, FirmwareState
from smpdevice.calibration.store import CalibrationStore
from smpdevice.control import PenController, State
from smpdevice.control.calibration import CalibrationError
from smpdevice.envelope import envelope_record
from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog, PassLogError, PassOutcome
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.screening import ScreeningRefused, parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import after, virtual_sim, wait_until

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
pytestmark = pytest.mark.virtual_time

CLEAR = {q: False for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare",
                            "infection", "sunburn", "keloid_tendency")}


def short_profile(seconds: float = 0.3, passes: int | None = None):
    profile = load_profile(EXAMPLES / "session1_base_density.yaml")
    plan = [p.model_copy(update={"duration_s": seconds, "impressions": None})
            for p in profile.plan][:passes]
    return profile.model_copy(update={"plan": plan})


@pytest.fixture
def passlog(tmp_path):
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        yield log


def open_session(pen, passlog, profile=None, **screening):
    return TreatmentSession.open(pen, passlog, profile or short_profile(), technician="ana",
                                 screening=parse_screening({**CLEAR, **screening}))


def test_session_end_to_end_every_pass_logged_and_consistent(sim, pen, passlog):
    profile = short_profile(0.4)
    session = open_session(pen, passlog, profile)
    results = session.play()
    summary, sheet = session.close()
    assert [r.outcome for r in results] == [PassOutcome.completed] * len(profile.plan)
    logged = passlog.passes(session.session_id)
    assert [p.zone for p in logged] == [p.zone for p in profile.plan]
    assert all(p.outcome == "completed" for p in logged)
    # the figures agree with the pen's own counters: all strokes happened inside passes
    total_strokes = pen.telemetry.strokes
    assert abs(sum(p.strokes for p in logged) - total_strokes) <= 2 * len(logged)
    for p, planned in zip(logged, profile.plan, strict=True):
        zone = profile.zones[planned.zone]
        expected = zone.speed_hz * planned.duration_s * zone.duty_pct / 100
        assert abs(p.strokes - expected) <= 0.35 * expected + 3
        assert abs(p.depth_mean_mm - zone.depth_mm) < 0.01  # depth in skin, calibrated
    record = passlog.session(session.session_id)
    assert record.pen_serial == sim.serial and record.calibration_id
    assert summary["passes"] == len(profile.plan)
    assert "Keep the treated area dry" in sheet
    assert passlog.verify() is None


def test_positive_screening_refuses_the_session(pen, passlog):
    with pytest.raises(ScreeningRefused, match="sunburn"):
        open_session(pen, passlog, sunburn=True)
    assert passlog.sessions() == []


def test_session_refused_without_calibration(sim, passlog):
    with PenController.connect(sim.url, clock=sim.clock) as pen, pytest.raises(CalibrationError,
                                                              match="no calibration"):
        open_session(pen, passlog)
    assert passlog.sessions() == []


def test_fault_mid_pass_is_recorded_with_its_code(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(2.0, passes=2))
    after(sim.clock, 0.4, lambda: sim.inject("jam"))
    results = session.play()
    assert results[-1].outcome is PassOutcome.fault
    assert len(results) == 1, "playback stops at a pass that did not complete"
    logged = passlog.passes(session.session_id)[0]
    assert logged.outcome == "fault" and "JAM" in logged.fault_names
    assert logged.fault_code & int(Fault.JAM)
    assert sim.firmware.state is FirmwareState.FAULT


def test_estop_mid_pass_is_recorded(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(2.0, passes=1))
    after(sim.clock, 0.3, pen.estop, in_thread=True)
    results = session.play()
    assert results[0].outcome is PassOutcome.estop
    assert passlog.passes(session.session_id)[0].outcome == "estop"
    assert pen.state is State.ESTOP


def test_full_disk_stops_the_needle_and_reports(sim, pen, passlog, mocker):
    session = open_session(pen, passlog, short_profile(3.0, passes=1))
    real = passlog._conn

    class FullDisk:
        """Stands in for the disk: progress checkpoints fail as SQLite does when it is full."""

        def execute(self, sql, *args):
            if "progress" in sql and "INSERT" in sql and "ON CONFLICT" in sql:
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(real, name)

    needle_state_at_error = []

    def play():
        try:
            session.play()
        except PassLogError as exc:
            needle_state_at_error.append((sim.firmware.state, str(exc)))

    mocker.patch.object(passlog, "_conn", FullDisk())
    play()
    assert needle_state_at_error, "the disk-full error must reach the caller"
    state, message = needle_state_at_error[0]
    assert state is FirmwareState.ARMED  # the needle was stopped before the error surfaced
    assert "full" in message
    mocker.patch.object(passlog, "_conn", real)
    assert passlog.passes(session.session_id)[0].outcome == "log_error"


HOST = """
import sys
from smpdevice.cli import main
sys.argv = ["smp", "run", sys.argv[1], "--port", sys.argv[2], "-t", "ana",
            "--screening", sys.argv[3]]
main()
"""


@pytest.mark.realtime  # a real host process over a real pty
def test_kill_9_mid_pass_then_restart_records_the_interrupted_pass(pen_sim_pty, tmp_path):
    sim, path = pen_sim_pty
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path), "SMP_LOG_LEVEL": "error"}
    CalibrationStore(tmp_path / "calibrations.sqlite").save(true_calibration(sim))
    profile = tmp_path / "profile.yaml"
    text = (EXAMPLES / "session1_base_density.yaml").read_text()
    profile.write_text(text.replace("duration_s: 3", "duration_s: 1.5"))
    child = subprocess.Popen(
        [sys.executable, "-c", HOST, str(profile), path,
         str(EXAMPLES / "screening_clear.yaml")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    db = tmp_path / "passlog.sqlite"
    try:
        deadline = time.monotonic() + 20
        while True:  # kill it in the middle of the second pass
            assert child.poll() is None, child.stderr.read()
            assert time.monotonic() < deadline, "the session never reached its second pass"
            if db.exists() and sim.firmware.state is FirmwareState.RUNNING:
                with PassLog(db, readonly=True) as log:
                    done = [p for p in log.passes() if p.outcome == "completed"]
                    if len(done) == 1 and len(log.passes()) == 2:
                        break
            time.sleep(0.05)
        time.sleep(0.6)  # past a checkpoint
        os.kill(child.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        child.wait(timeout=5)
        while sim.firmware.state is FirmwareState.RUNNING:
            assert time.monotonic() - killed_at < 1.5, "the needle kept running"
            time.sleep(0.002)
    finally:
        if child.poll() is None:
            child.kill()
    assert Fault.LEASE_EXPIRED in Fault(sim.firmware.faults)
    with PassLog(db) as log:  # the next start
        assert len(log.recovered) == 1
        passes = log.passes()
        assert [p.outcome for p in passes] == ["completed", "controller_crashed"]
        crashed = passes[1]
        assert crashed.pass_id == log.recovered[0]
        assert crashed.strokes > 0, "the checkpointed figures survive the crash"
        assert log.verify() is None


def test_session_refuses_a_profile_this_pen_cannot_do(passlog):
    from simulators.pen_model import PenModel
    from smpdevice.sessions.profiles import ProfileError

    slow_pen = PenModel(seed=7, speed_max_hz=70.0)  # the profile asks for 80-90 Hz
    with virtual_sim(model=slow_pen) as s, PenController.connect(
        s.url, calibration=true_calibration(s), clock=s.clock
    ) as pen, pytest.raises(ProfileError, match=r"speed_hz.*70"):
        open_session(pen, passlog)
    assert passlog.sessions() == []


def test_ctrl_c_while_the_needle_is_starting_still_stops_it(sim, pen, passlog):
    """A real SIGINT arriving at the moment the pen executes NEEDLE_START (the caller is still
    waiting for its ACK): the needle is stopped and the pass recorded as stopped."""
    from firmware_protocol.codes import MsgType

    session = open_session(pen, passlog, short_profile(2.0, passes=1))
    execute = sim.firmware._execute

    def execute_then_ctrl_c(mtype, msg):  # the technician's Ctrl-C, timed by the pen
        reply = execute(mtype, msg)
        if mtype is MsgType.NEEDLE_START:
            os.kill(os.getpid(), signal.SIGINT)
        return reply

    sim.firmware._execute = execute_then_ctrl_c
    with pytest.raises(KeyboardInterrupt):
        session.play()
    sim.firmware._execute = execute
    wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING, 1.0)
    assert passlog.passes(session.session_id)[0].outcome == "stopped"
    assert pen.state is State.ARMED


def test_an_exception_in_a_progress_callback_stops_and_records_the_pass(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(2.0, passes=1))

    def broken_display(progress):
        if progress.elapsed_s > 0.2:
            raise ValueError("display glitch")

    with pytest.raises(ValueError, match="display glitch"):
        session.play(on_progress=broken_display)
    assert sim.firmware.state is not FirmwareState.RUNNING
    (logged,) = passlog.passes(session.session_id)
    assert logged.outcome == "stopped"
    session.close()
    assert passlog.session(session.session_id).closed_at


def test_a_stop_request_between_passes_starts_no_further_pass(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.3, passes=3))
    asked = []

    def stop_after_first_pass() -> bool:
        asked.append(len(session.results))
        return len(session.results) >= 1

    results = session.play(should_stop=stop_after_first_pass)
    summary, sheet = session.close()
    assert [r.outcome for r in results] == [PassOutcome.completed]
    assert session.stop_requested and session.outcome.value == "interrupted"
    assert summary["outcome"] == "interrupted" and summary["planned_passes"] == 3
    assert "SESSION INCOMPLETE: 1 of 3 planned passes were completed" in sheet


def test_a_stop_asked_while_the_pass_arms_never_starts_the_needle(sim, pen, passlog):
    """A stop that comes while the pass sets up (a service's driver lost during `arm()`): the
    needle used to start anyway and run until the next poll."""
    session = open_session(pen, passlog, short_profile(0.3, passes=2))
    states: list[State] = []
    pen.add_state_listener(lambda old, new, reason: states.append(new))

    results = session.play(should_stop=lambda: pen.state is State.ARMED)
    session.close()
    assert [(r.outcome, r.stats.strokes) for r in results] == [(PassOutcome.stopped, 0)]
    assert "before the needle started" in results[0].detail
    assert State.RUNNING not in states and pen.state is State.IDLE
    assert session.stop_requested and session.outcome.value == "interrupted"


def test_a_fault_latched_between_passes_ends_the_session_as_a_fault(sim, pen, passlog):
    """No pass is running when the fault latches: the session still says why it ended."""
    session = open_session(pen, passlog, short_profile(0.3, passes=2))

    first = session.run_pass(session.profile.plan[0], index=0)
    assert first.outcome is PassOutcome.completed
    sim.inject("cartridge_removed")  # the pen is armed between passes: it latches
    pen.wait_for_state(State.FAULT, timeout_s=10)
    results = session.play()  # refuses to begin a pass on a faulted pen, without an error
    session.close()
    assert [r.outcome for r in results] == [PassOutcome.completed]
    assert session.outcome.value == "fault" and session.outcome.exit_code == 4


def test_the_session_records_simulated_and_the_envelope_in_force(sim, pen, passlog):
    session = open_session(pen, passlog, short_profile(0.3, passes=1))
    session.play()
    session.close()
    header = passlog.session(session.session_id)
    assert header.simulated is True
    assert header.envelope == envelope_record(pen.zones)  # the limits this pen applied
    assert header.envelope["zones"]["crown"]["dermal_ceiling_mm"] == \
        pen.zones["crown"].dermal_ceiling_mm
    assert all(p.simulated is True for p in passlog.passes(session.session_id))


def test_a_session_on_a_faulted_pen_is_refused_naming_smp_clear(sim, pen, passlog):
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)
    pen.arm()
    sim.inject("cartridge_removed")
    pen.wait_for_state(State.FAULT, timeout_s=10)
    with pytest.raises(SmpError, match=f"clear it: smp clear --port {sim.url}"):
        open_session(pen, passlog)
