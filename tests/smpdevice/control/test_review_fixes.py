"""Regression tests for the adversarial review's safety findings (notes/review r01..r14).

Each runs against the real simulator on its virtual clock; a race the finding needs is widened
deterministically (a hook, a paused loop), never by a sleep.
"""

from __future__ import annotations

import contextlib
import threading

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from simulators import PenSimulator
from smpdevice.control import PenController, State
from smpdevice.envelope import DEFAULT_ZONES
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration
from tests.smpdevice.virtual_time import wait_until as virtual_wait_until

GENEROUS_S = 5.0  # waits are on conditions; this only bounds a broken run

pytestmark = pytest.mark.virtual_time


def wait_until(sim: PenSimulator, predicate, timeout_s: float = GENEROUS_S) -> None:
    virtual_wait_until(sim, predicate, timeout_s)


def hammer(pen: PenController, threads: int) -> tuple[threading.Event, list[threading.Thread]]:
    """`threads` callers issuing the allowed set_setpoints back to back (a UI and a session)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                pen.set_setpoints(**CROWN)
            except Exception:
                return

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    return stop, workers


# ---------------------------------------------------------------- r03: pass time starved


def test_pass_time_limit_fires_while_other_callers_keep_the_queue_busy(sim):
    quick = {"crown": DEFAULT_ZONES["crown"].model_copy(update={"max_pass_s": 0.3})}
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               zones=quick, lease_ms=200) as pen:
        # The start's time, read in the loop thread when it tells of RUNNING: virtual time
        # stands still until the loop has done so, while this thread may be descheduled past
        # the whole 0.3 s pass on a loaded machine.
        starts: list[float | None] = []
        pen.add_state_listener(
            lambda old, new, why: starts.append(pen.running_since_s) if new is State.RUNNING
            else None)
        run_needle(pen)
        sim.link.delay_inbound(0.02, MsgType.SET_SETPOINTS)  # replies late: ops always queued
        stop, workers = hammer(pen, 2)
        try:
            wait_until(sim, lambda: bool(starts))
            started = starts[0]
            assert started is not None
            wait_until(sim, lambda: pen.state is not State.RUNNING, timeout_s=3.0)
            wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING)
            assert sim.clock.now() - started < 0.3 + 0.2  # within a lease of the limit
        finally:
            stop.set()
            for w in workers:
                w.join(timeout=GENEROUS_S)
        assert pen.state in (State.ARMED, State.FAULT)


# ---------------------------------------------------------------- r04: telemetry stops, ACKs go on


def test_telemetry_that_stops_while_acks_continue_stops_the_pass(sim, pen):
    run_needle(pen)
    sim.firmware.telemetry_hz = 0  # a stuck telemetry task: the pen still ACKs every renewal
    pen.wait_for_state(State.FAULT, timeout_s=GENEROUS_S)
    assert "telemetry stopped" in str(pen.last_fault)
    wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING)
    renewed = sim.firmware.executed[MsgType.LEASE_RENEW]
    sim.time.sleep(4 * pen.lease_ms / 1000)
    assert sim.firmware.executed[MsgType.LEASE_RENEW] == renewed  # nothing renews it


def test_a_fault_event_without_telemetry_latches_the_fault_at_once(sim, pen):
    from simulators import DeviceFault

    run_needle(pen)
    sim.firmware.telemetry_hz = 0
    sim.inject(DeviceFault.JAM)
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.FAULT)
    latched_at = sim.clock.now()
    pen.wait_for_state(State.FAULT, timeout_s=GENEROUS_S)
    assert sim.clock.now() - latched_at < pen.lease_ms / 1000  # the EVENT, not the staleness
    assert "JAM" in str(pen.last_fault)


def test_a_refused_lease_renewal_is_a_fault(sim, pen):
    """A pen that reboots mid-pass NACKs the next renewal (BOOTING) before it reports anything:
    the refusal alone latches the fault."""
    from simulators import DeviceFault

    run_needle(pen)
    sim.inject(DeviceFault.BROWNOUT)  # no telemetry while it boots; renewals get NACK BOOTING
    pen.wait_for_state(State.FAULT, timeout_s=GENEROUS_S)
    assert "refused the lease renewal: BOOTING" in str(pen.last_fault)


def _session(pen, tmp_path, seconds: float, passes: int = 1):
    from smpdevice.passlog import PassLog
    from tests.smpdevice.sessions.test_session import open_session, short_profile

    log = PassLog.open(tmp_path / "passlog.sqlite")
    return log, open_session(pen, log, short_profile(seconds, passes=passes))


def test_a_jam_after_telemetry_stopped_is_recorded_as_a_fault_pass(sim, pen, tmp_path):
    from simulators import DeviceFault
    from tests.smpdevice.virtual_time import after

    log, session = _session(pen, tmp_path, 1.0)
    with log:
        def saboteur() -> None:
            sim.firmware.telemetry_hz = 0
            after(sim.clock, 0.05, lambda: sim.inject(DeviceFault.JAM))

        after(sim.clock, 0.3, saboteur)
        results = session.play()
        summary, _sheet = session.close()
        assert [r.outcome.value for r in results] == ["fault"]
        assert [p.outcome for p in log.passes(session.session_id)] == ["fault"]
        assert summary["outcome"] == "fault"


def test_close_records_the_session_when_the_pen_refuses_disarm(sim, pen, tmp_path):
    from simulators import DeviceFault

    log, session = _session(pen, tmp_path, 0.2, passes=2)
    with log:
        first = session.run_pass(session.profile.plan[0], index=0)
        assert first.outcome.value == "completed" and pen.state is State.ARMED
        # the pen latches a fault nobody hears of (no telemetry, no EVENT) before close()
        sim.firmware.telemetry_hz = 0
        sim.firmware._event = lambda *a, **k: None
        sim.inject(DeviceFault.CARTRIDGE_REMOVED)
        wait_until(sim, lambda: sim.firmware.state is FirmwareState.FAULT, timeout_s=0.1)
        assert pen.state is State.ARMED  # nothing told the controller yet
        summary, sheet = session.close()  # DISARM: NACK FAULT_LATCHED -> no traceback
        assert pen.state is State.FAULT
        assert "refused DISARM: FAULT_LATCHED" in str(pen.last_fault)
        assert summary["outcome"] == session.outcome.value  # recorded, not a traceback
        assert session.outcome.value in ("fault", "incomplete")
        assert log.passes(session.session_id)[0].outcome == "completed"
        assert sheet


# ---------------------------------------------------------------- r01: motion after E-stop


def _tx_after_estop(pen: PenController) -> list[str]:
    """Names of the frames the host wrote after its first ESTOP."""
    sent = [type(m).__name__ for (_t, d, _s, m) in pen.link.history if d == "tx"]
    return sent[sent.index("EStop") + 1:] if "EStop" in sent else []


def _estop_inside(pen: PenController, name: str, when) -> list[bool]:
    """Make the loop call estop() (in another thread, to its end) right after its own check
    `name` passed: the widest TOCTOU window, deterministically."""
    original = getattr(pen, name)
    fired: list[bool] = []
    busy: list[bool] = []

    def hooked():
        result = original()
        if not busy and when(result):
            busy.append(True)
            def estop() -> None:
                with contextlib.suppress(Exception):  # unconfirmed or not, it returned
                    pen.estop()

            worker = threading.Thread(target=estop)
            worker.start()
            worker.join(timeout=GENEROUS_S)
            fired.append(True)
        return result

    setattr(pen, name, hooked)
    return fired


def test_no_needle_start_reaches_the_wire_after_estop_returned(sim, pen):
    from firmware_protocol.messages import NeedleStart

    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    fired = _estop_inside(pen, "motion_refused", lambda refused: refused is None and any(
        isinstance(op.step, NeedleStart) for op in pen._engine.ops[:1]))
    with pytest.raises(Exception):  # noqa: B017 - refused: the E-stop came first
        pen.start_needle()
    assert fired and pen.state is State.ESTOP
    motion = {"LeaseRenew", "NeedleStart", "Arm", "SetSetpoints"}
    assert not motion & set(_tx_after_estop(pen))
    assert sim.firmware.executed[MsgType.NEEDLE_START] == 0


def test_no_lease_renewal_reaches_the_wire_after_estop_returned(sim, pen):
    import sys

    run_needle(pen)
    fired = _estop_inside(pen, "lease_needed", lambda needed: needed and
                          sys._getframe(2).f_code.co_name == "renew_lease")
    wait_until(sim, lambda: bool(fired))
    assert pen.state is State.ESTOP
    sim.time.sleep(2 * pen.lease_ms / 1000)
    assert "LeaseRenew" not in _tx_after_estop(pen)


# ---------------------------------------------------------------- r02, r12: E-stop and connecting


@pytest.mark.parametrize("estop_frames", ["delivered", "lost"])
def test_estop_during_the_handshake_leaves_the_controller_in_estop(sim, estop_frames):
    from smpdevice.control import EStopUnconfirmed

    if estop_frames == "lost":
        sim.link.drop_inbound(MsgType.ESTOP)
    ctl = PenController(sim.url, calibration=true_calibration(sim), lease_ms=200,
                        clock=sim.clock)
    check = ctl._check_identity
    said: list[BaseException | None] = []

    def estop_meanwhile(identify):  # another thread presses E-stop mid-handshake
        def press() -> None:
            try:
                ctl.estop()
                said.append(None)
            except EStopUnconfirmed as exc:
                said.append(exc)

        worker = threading.Thread(target=press)
        worker.start()
        worker.join(timeout=GENEROUS_S)
        return check(identify)

    ctl._check_identity = estop_meanwhile
    try:
        ctl.open()
        assert said
        assert ctl.state is State.ESTOP, ctl.state
        assert "E-stop" in str(ctl.last_fault)
        with pytest.raises(Exception, match="estop"):
            ctl.arm()
        sim.link.clear_inbound()
        wait_until(sim, lambda: not ctl.estop_unconfirmed)  # a clear waits for the pen's word
        ctl.clear_faults()  # the explicit reset, and only it, ends the latch
        assert ctl.state is State.IDLE
    finally:
        ctl.close()


def test_an_estop_is_not_forgotten_across_link_loss_and_reconnect(sim, pen):
    from smpdevice.control import EStopUnconfirmed, StateError

    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    sim.link.drop_inbound(MsgType.ESTOP)
    with pytest.raises(EStopUnconfirmed):
        pen.estop()
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=GENEROUS_S)
    assert "E-stop" in str(pen.last_fault)  # still visible after the link loss
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.IDLE)  # lease lapsed: no fault
    sim.reconnect()
    sim.link.clear_inbound()
    pen.reconnect()
    assert pen.state is State.ESTOP
    assert "E-stop" in str(pen.last_fault)
    with pytest.raises(StateError):
        pen.arm()
    pen.clear_faults()
    assert pen.state is State.IDLE
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()  # after the explicit reset, it works again
    assert pen.state is State.ARMED


# ---------------------------------------------------------------- r14: concurrent estop()


def test_estop_from_many_threads_shares_one_tracker_and_leaks_no_seq(sim, pen):
    from smpdevice.control import EStopUnconfirmed

    run_needle(pen)
    sim.link.drop_inbound(MsgType.ESTOP)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def press() -> None:
        barrier.wait()
        try:
            pen.estop()
            results.append("ok")
        except EStopUnconfirmed:
            results.append("unconfirmed")

    workers = [threading.Thread(target=press) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=GENEROUS_S)
    assert sorted(results) == ["unconfirmed"] * 8 and pen.state is State.ESTOP
    assert len(pen.link._waiters) <= 1  # one shared E-stop, still being re-sent
    sim.link.clear_inbound()
    wait_until(sim, lambda: sim.firmware.state is FirmwareState.ESTOP)
    pen.clear_faults()
    assert pen.link._waiters == {}
    pen.set_zone("crown")
    for _ in range(300):  # the 1..255 seq counter wraps: every reply still reaches its caller
        pen.set_setpoints(**CROWN)


def test_next_seq_skips_seqs_reserved_by_waiters(pen):
    from firmware_protocol.messages import EStop

    tracked = pen.link.track(EStop())
    try:
        assert tracked.seq not in {pen.link.next_seq() for _ in range(600)}
    finally:
        pen.link.untrack(tracked)


# ---------------------------------------------------------------- calibration origin


def _real_pen_stand_in(sim: PenSimulator):
    """The simulator over TCP, with IDENTIFY saying nothing of SIMULATED: as a real pen."""
    from firmware_protocol.codes import Capability
    from simulators.reach import TcpBridge

    fw = sim.firmware
    identify = type(fw)._HANDLERS[MsgType.IDENTIFY_REQUEST]

    def as_real(self, msg):
        reply = identify(self, msg)
        reply.capabilities &= ~int(Capability.SIMULATED)
        return reply

    fw._HANDLERS = {**type(fw)._HANDLERS, MsgType.IDENTIFY_REQUEST: as_real}
    return TcpBridge(sim)


@pytest.mark.realtime  # a TCP bridge: the real socket path
def test_a_simulated_calibration_never_drives_a_real_pen(sim):
    from smpdevice.control.calibration import CalibrationError

    bridge = _real_pen_stand_in(sim)
    try:
        sim_cal = true_calibration(sim).model_copy(update={"simulated": True})
        with PenController.connect(bridge.url, lease_ms=200) as pen:
            assert pen.simulated is False
            with pytest.raises(CalibrationError, match="made on a simulated pen.*real pen"):
                pen.set_calibration(sim_cal)
        with PenController.connect(bridge.url, calibration=sim_cal, lease_ms=200) as pen:
            pen.set_zone("crown")
            with pytest.raises(CalibrationError, match="made on a simulated pen"):
                pen.set_setpoints(**CROWN)
            with pytest.raises(Exception, match="simulated pen"):
                pen.arm()
            assert sim.firmware.executed[MsgType.SET_SETPOINTS] == 0
            assert sim.firmware.executed[MsgType.ARM] == 0
            pen.set_calibration(true_calibration(sim))  # a real pen's own: accepted
    finally:
        bridge.close()


# ---------------------------------------------------------------- r10: a blocking listener


@pytest.mark.realtime  # a listener that blocks the virtual world would also hold its clock
def test_a_blocking_telemetry_listener_stalls_neither_replies_nor_stops(sim, pen):
    release = threading.Event()
    blocked = threading.Event()

    def frozen_ui(t) -> None:
        if pen.state is State.RUNNING:
            blocked.set()
            release.wait(GENEROUS_S * 4)

    pen.telemetry_listeners.maxlen = 8  # drops show up after 8 frames, not 256
    pen.add_telemetry_listener(frozen_ui)
    try:
        run_needle(pen)
        assert blocked.wait(GENEROUS_S)
        # while it blocks: replies are handled (not a LinkTimeout), the pen keeps its lease
        pen.set_setpoints(**CROWN)
        pen.stop_needle()
        assert pen.state is State.ARMED
        assert sim.firmware.state is FirmwareState.ARMED
        wait_until(sim, lambda: pen.telemetry_listeners.dropped > 0)  # old frames dropped
        assert not release.is_set()
    finally:
        release.set()


def test_reconciliation_is_not_starved_by_a_stream_of_setpoints(sim, pen):
    """The pen stops the needle by itself (another host's NEEDLE_STOP) while two callers keep
    SET_SETPOINTS queued: the controller still notices, and stops renewing."""
    from firmware_protocol import encode
    from firmware_protocol.messages import NeedleStop

    run_needle(pen)
    sim.link.delay_inbound(0.02, MsgType.SET_SETPOINTS)
    stop, workers = hammer(pen, 2)
    reserved = pen.link.track(NeedleStop())  # its seq: the stray ACK reaches nobody's request
    try:
        sim.time.sleep(0.1)
        with sim._cond:  # a second host on the pen's line
            sim._run_until(sim.clock.now())
            sim.firmware.receive_now(encode(NeedleStop(), reserved.seq))
            sim._collect()
        assert sim.firmware.state is FirmwareState.ARMED
        pen.wait_for_state(State.FAULT, timeout_s=1.0)
        assert "stopped unexpectedly" in str(pen.last_fault)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=GENEROUS_S)
        pen.link.untrack(reserved)
