"""The controller against the real simulator over pensim:// byte streams, on virtual time.

Every wait is measured on the simulator's clock (tests/smpdevice/virtual_time.py); only the
tests over a real pty or TCP socket run on wall time, marked `realtime`."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from firmware_protocol.codes import Fault, FirmwareState, MsgType, NackReason
from simulators import PenSimulator
from simulators.faults import LinkFaultConfig
from smpdevice.control import HandshakeError, PenController, State, StateError
from smpdevice.control.calibration import Calibration, CalibrationError
from smpdevice.envelope import EnvelopeError
from smpdevice.errors import SmpError
from smpdevice.link import CommandRefused
from tests.smpdevice.conftest import CROWN, run_needle, true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wait_until

pytestmark = pytest.mark.virtual_time  # sim and pen run on the simulator's virtual clock


def pen_state(sim: PenSimulator) -> FirmwareState:
    return sim.firmware.state


# ---------------------------------------------------------------- handshake and identity


def test_connect_reads_identity_and_limits(sim, pen):
    assert pen.state is State.IDLE
    assert pen.identity.serial == sim.serial
    assert pen.identity.firmware_version == "1.0.0"
    assert pen.identity.limits.depth_max_mm == sim.model.depth_max_um / 1000
    assert pen.identity.limits.speed_max_hz == sim.model.speed_max_hz
    assert pen.telemetry is not None and pen.telemetry.state is FirmwareState.IDLE


def test_schema_mismatch_is_refused_saying_what_differs(sim, monkeypatch):
    # A host built from another catalogue: its expected hash differs from the pen's.
    monkeypatch.setattr("smpdevice.control.connection.SCHEMA_HASH", 0x12345678)
    with pytest.raises(HandshakeError, match="message catalogue hash: pen 0x.*host 0x12345678"):
        PenController.connect(sim.url, clock=sim.clock)


def test_wrong_port_is_a_clear_error():
    from smpdevice.transport import TransportError

    with pytest.raises(TransportError, match="cannot open port.*smp ports"):
        PenController.connect("/dev/does-not-exist")


# ---------------------------------------------------------------- transitions and guards


def test_full_cycle_drives_the_pen(sim, pen):
    run_needle(pen)
    assert pen.state is State.RUNNING
    wait_until(sim, lambda: pen_state(sim) is FirmwareState.RUNNING)
    wait_until(sim, lambda: pen.telemetry.strokes > 0)
    pen.stop_needle()
    assert pen.state is State.ARMED
    assert pen_state(sim) is FirmwareState.ARMED
    pen.disarm()
    assert pen.state is State.IDLE and pen_state(sim) is FirmwareState.IDLE


def test_depth_is_sent_through_the_calibration(sim, pen):
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    sim.time.sleep(0.3)  # idle: stored, the needle stays inside the tip (protocol.md sec. 7)
    assert sim.gauge.read_mm() == 0.0
    pen.arm()
    wait_until(sim, lambda: abs(sim.gauge.read_mm() - CROWN["depth_mm"]) < 0.002)
    expected_actuator_um = round(pen.calibration.to_actuator_mm(CROWN["depth_mm"]) * 1000)
    assert sim.firmware.depth_cmd_um == expected_actuator_um


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("zone", "no zone chosen"),
        ("setpoints", "no setpoints"),
    ],
)
def test_arm_guards_name_what_is_missing(pen, missing, message):
    if missing == "setpoints":
        pen.set_zone("crown")
    with pytest.raises(StateError, match=message):
        pen.arm()
    assert pen.state is State.IDLE


def test_arm_refused_without_calibration(sim):
    with PenController.connect(sim.url, clock=sim.clock) as pen:
        pen.set_zone("crown")
        with pytest.raises(CalibrationError, match="has no calibration.*smp calibrate"):
            pen.set_setpoints(**CROWN)
        with pytest.raises(StateError, match="has no calibration"):
            pen.arm()


def test_expired_or_foreign_calibration_is_refused(sim):
    from datetime import UTC, datetime, timedelta

    expired = Calibration.linear(pen_serial=sim.serial, technician="t", offset_mm=-0.3,
                                 gain=1.0, created_at=datetime.now(UTC) - timedelta(days=31))
    with PenController.connect(sim.url, clock=sim.clock, calibration=expired) as pen:
        pen.set_zone("crown")
        with pytest.raises(CalibrationError, match="expired"):
            pen.set_setpoints(**CROWN)
    foreign = Calibration.linear(pen_serial="SMP-OTHER", technician="t", offset_mm=-0.3, gain=1)
    with PenController.connect(sim.url, clock=sim.clock, calibration=foreign) as pen:
        pen.set_zone("crown")
        with pytest.raises(CalibrationError, match="belongs to pen SMP-OTHER"):
            pen.set_setpoints(**CROWN)


@pytest.mark.parametrize("action", ["start_needle", "stop_needle", "disarm", "clear_faults"])
def test_wrong_state_requests_are_refused_in_idle(pen, action):
    with pytest.raises(StateError):
        getattr(pen, action)()
    assert pen.state is State.IDLE


def test_out_of_envelope_setpoint_names_parameter_value_and_limit(sim, pen, mocker):
    pen.set_zone("hairline")
    spy = mocker.spy(sim.firmware, "_execute")
    with pytest.raises(EnvelopeError) as err:
        pen.set_setpoints(depth_mm=0.9, speed_hz=100, duty_pct=40, period_ms=100)
    text = str(err.value)
    assert "depth_mm=0.9 is deeper than the dermal ceiling 0.55" in text
    assert err.value.violations[0].limit == 0.55
    assert not spy.call_count, "nothing may reach the pen"


def test_shallow_depth_below_epidermal_floor_refused(pen):
    pen.set_zone("crown")
    with pytest.raises(EnvelopeError, match="shallower than the epidermal floor 0.25"):
        pen.set_setpoints(depth_mm=0.1, speed_hz=100, duty_pct=40, period_ms=100)


def test_overworking_one_spot_is_refused(pen):
    pen.set_zone("hairline")
    with pytest.raises(EnvelopeError, match="strokes_per_impression=12.*above the maximum 8"):
        pen.set_setpoints(depth_mm=0.4, speed_hz=100, duty_pct=60, period_ms=200)


def test_unknown_zone_lists_known_ones(pen):
    with pytest.raises(EnvelopeError, match="known zones: .*crown"):
        pen.set_zone("eyebrow")


def test_envelope_never_wider_than_hard_limits(sim):
    from simulators.pen_model import PenModel

    narrow = PenModel(seed=7, speed_max_hz=80.0)
    with virtual_sim(model=narrow) as s2, PenController.connect(
        s2.url, calibration=true_calibration(s2), clock=s2.clock
    ) as pen:
        zone = pen.set_zone("crown")
        assert zone.speed_max_hz == 80.0
        with pytest.raises(EnvelopeError, match="speed_hz=100 is above the maximum 80"):
            pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=100)


def test_state_listeners_see_every_change(pen):
    seen = []
    pen.add_state_listener(lambda old, new, reason: seen.append((old, new)))
    run_needle(pen)
    pen.stop_needle()
    assert seen == [(State.IDLE, State.ARMED), (State.ARMED, State.RUNNING),
                    (State.RUNNING, State.ARMED)]


# ---------------------------------------------------------------- E-stop


def _to_state(pen: PenController, sim: PenSimulator, target: State) -> None:
    if target is State.ARMED:
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
    elif target is State.RUNNING:
        run_needle(pen)
    elif target is State.CALIBRATING:
        pen.begin_calibration()


@pytest.mark.parametrize(
    "start", [State.IDLE, State.ARMED, State.RUNNING, State.CALIBRATING]
)
def test_estop_from_every_state_latches(sim, pen, start):
    _to_state(pen, sim, start)
    assert pen.state is start
    pen.estop()
    assert pen.state is State.ESTOP
    assert pen_state(sim) is FirmwareState.ESTOP
    wait_until(sim, lambda: not pen.telemetry.needle_running and pen.telemetry.speed_hz == 0)
    # latched: nothing moves until cleared, and arming is refused
    with pytest.raises(StateError, match="estop"):
        pen.arm()
    pen.clear_faults()
    assert pen.state is State.IDLE
    assert pen_state(sim) is FirmwareState.IDLE


def test_estop_from_fault_state(sim, pen):
    run_needle(pen)
    sim.inject("jam")
    pen.wait_for_state(State.FAULT)
    pen.estop()
    assert pen.state is State.ESTOP


# ---------------------------------------------------------------- device faults


@pytest.mark.parametrize(
    ("fault", "flag"),
    [
        ("jam", Fault.JAM),
        ("overcurrent", Fault.OVERCURRENT),
        ("overtemperature", Fault.OVERTEMPERATURE),
        ("encoder_loss", Fault.ENCODER_LOSS),
        ("depth_drift", Fault.DEPTH_OUT_OF_BAND),
        ("cartridge_removed", Fault.CARTRIDGE_REMOVED),
        ("brownout", Fault.POWER_RESET),
    ],
)
def test_device_fault_while_running_stops_needle_and_latches(sim, pen, fault, flag):
    run_needle(pen)
    wait_until(sim, lambda: pen.telemetry.speed_hz > 0 or pen.telemetry.strokes > 0)
    sim.inject(fault)
    pen.wait_for_state(State.FAULT, timeout_s=3.0)
    assert flag in pen.last_fault.faults, pen.last_fault
    wait_until(sim, lambda: pen.telemetry.faults & flag and not pen.telemetry.needle_running)
    assert pen_state(sim) is FirmwareState.FAULT
    # nothing resumes by itself
    sim.time.sleep(0.1)
    assert pen.state is State.FAULT and pen_state(sim) is FirmwareState.FAULT
    if fault not in ("brownout",):
        if fault != "overtemperature":  # temperature falls on its own; others need a fix
            with pytest.raises(CommandRefused) as err:
                pen.clear_faults()
            assert err.value.reason is NackReason.CONDITION_ACTIVE
        sim.clear(fault)
    if fault == "overtemperature":
        sim.firmware.physics.temp_c = sim.model.ambient_c  # let it cool (no waiting 30 s)
    wait_until(sim, lambda: _clearable(pen), timeout_s=3.0)
    assert pen.state is State.IDLE


def _clearable(pen: PenController) -> bool:
    try:
        pen.clear_faults()
        return True
    except CommandRefused:
        return False


def test_fault_logs_the_last_frames(sim, pen):
    from structlog.testing import capture_logs

    run_needle(pen)
    with capture_logs() as logs:
        sim.inject("jam")
        pen.wait_for_state(State.FAULT, timeout_s=3.0)
        wait_until(sim, lambda: any(e["event"] == "fault" for e in logs))  # logged after the stop
    faults = [e for e in logs if e["event"] == "fault"]
    assert faults and any("NeedleStart" in line for line in faults[0]["last_frames"])


def test_pass_time_limit_stops_the_needle(sim):
    from smpdevice.envelope import DEFAULT_ZONES

    quick = {"crown": DEFAULT_ZONES["crown"].model_copy(update={"max_pass_s": 0.2})}
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               zones=quick) as pen:
        run_needle(pen)
        pen.wait_for_state(State.ARMED, timeout_s=2.0)
        assert pen_state(sim) is FirmwareState.ARMED


# ---------------------------------------------------------------- link faults and the lease


def test_stall_is_link_loss_and_the_pen_stops_on_its_own(sim, pen):
    run_needle(pen)
    sim.link.stall(sim.firmware.time_s())
    t0 = sim.clock.now()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=2.0)
    # detected within two lease periods of the last byte (virtual time: exact, not flaky)
    assert sim.clock.now() - t0 <= 2 * pen.lease_ms / 1000 + 0.01
    wait_until(sim, lambda: pen_state(sim) is FirmwareState.FAULT, timeout_s=1.0)
    assert Fault.LEASE_EXPIRED in Fault(sim.firmware.faults)


def test_disconnect_then_reconnect_never_resumes(sim, pen):
    run_needle(pen)
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=1.0)
    wait_until(sim, lambda: pen_state(sim) is FirmwareState.FAULT, timeout_s=1.0)
    with pytest.raises(StateError, match="not connected"):
        pen.start_needle()
    sim.reconnect()
    pen.reconnect()
    assert pen.state is State.FAULT  # the lease lapse is latched: a person must clear it
    assert Fault.LEASE_EXPIRED in pen.last_fault.faults
    assert pen_state(sim) is FirmwareState.FAULT
    pen.clear_faults()
    assert pen.state is State.IDLE


@pytest.mark.realtime  # the loop's thread really hangs: virtual time would wait for it
def test_hung_controller_loop_stops_renewing_and_the_pen_stops(sim, pen):
    run_needle(pen)
    pen._engine.post(time.sleep, 0.6)  # the loop hangs for 3 leases
    wait_until(sim, lambda: pen_state(sim) is FirmwareState.FAULT, timeout_s=1.0)
    assert Fault.LEASE_EXPIRED in Fault(sim.firmware.faults)
    pen.wait_for_state(State.FAULT, State.DISCONNECTED, timeout_s=2.0)


def test_reader_failure_becomes_link_lost_not_a_dead_thread(sim, pen, mocker):
    mocker.patch.object(pen.link.port, "read", side_effect=OSError("device reports readiness"))
    pen.wait_for_state(State.DISCONNECTED, timeout_s=1.0)
    assert "device reports readiness" in str(pen.last_fault)


def test_commands_under_corruption_complete_exactly_once_or_fail_clearly(mocker):
    from smpdevice.link import LinkError

    faults = LinkFaultConfig(drop_p=0.01, flip_p=0.01)
    with virtual_sim(seed=11, link_faults=faults) as s:
        spy = mocker.spy(s.firmware, "_execute")
        with PenController.connect(s.url, calibration=true_calibration(s), lease_ms=1000,
                                   clock=s.clock) as pen:
            pen.set_zone("crown")
            completed, failed = [], 0
            for i in range(150):
                # every command distinct, so a double execution would show
                depth, speed = 0.30 + (i % 40) / 100, 60.0 + i % 70
                try:
                    pen.set_setpoints(depth_mm=depth, speed_hz=speed, duty_pct=40, period_ms=100)
                    completed.append(i)
                except LinkError as exc:
                    failed += 1
                    assert "no reply" in str(exc) or "link" in str(exc)
            executed = [c for c in spy.call_args_list if c.args[0] is MsgType.SET_SETPOINTS]
            stats = pen.link.stats
    assert len(completed) + failed == 150
    assert len(completed) >= 140
    # every completed command ran on the pen, and none ran twice (retransmissions deduped)
    payloads = Counter(c.args[1].pack() for c in executed)
    assert max(payloads.values()) == 1
    assert len(completed) <= len(executed) <= 150
    assert stats.retransmissions > 0, "the fault rate should have forced retransmissions"


# ---------------------------------------------------------------- each link fault, on demand


@pytest.mark.parametrize(
    "fault",
    ["drop_next_frames", "corrupt_next_frames", "duplicate_next_frames", "split_next_frames",
     "inject_junk"],
)
def test_each_link_fault_is_absorbed_commands_complete(sim, pen, fault):
    """Every command completes despite the fault; a dropped or corrupted reply is retransmitted
    (same seq, so the pen answers from its duplicate window instead of executing again)."""
    pen.set_zone("crown")
    executed_before = sim.firmware.executed[MsgType.SET_SETPOINTS]
    for depth in (0.4, 0.5, 0.6):
        if fault == "inject_junk":
            sim.link.inject_junk()
        else:
            getattr(sim.link, fault)(3)
        pen.set_setpoints(depth_mm=depth, speed_hz=100, duty_pct=40, period_ms=100)
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] - executed_before == 3
    assert pen.state is State.IDLE
    if fault in ("drop_next_frames", "corrupt_next_frames"):
        assert pen.link.stats.retransmissions >= 1
    if fault == "corrupt_next_frames":
        assert pen.link.decoder.stats.bad_crc + pen.link.decoder.stats.garbage_bytes > 0


def test_delayed_replies_adapt_the_retransmission_timeout():
    with virtual_sim(seed=7, link_faults=LinkFaultConfig(delay_s=0.05)) as s, \
            PenController.connect(s.url, calibration=true_calibration(s), lease_ms=1000,
                                  clock=s.clock) as pen:
        pen.set_zone("crown")
        for _ in range(5):
            pen.set_setpoints(**CROWN)
        assert pen.link.rto.srtt_s > 0.04
        assert pen.link.rto.rto_s > 0.05  # above the delay: no needless retransmissions
        executed = s.firmware.executed[MsgType.SET_SETPOINTS]
    assert executed == 5


def test_lost_telemetry_is_counted_from_sequence_numbers(sim, pen):
    before = pen.link.stats.telemetry_lost
    sim.link.drop_next_frames(5)  # the next five frames the pen writes are telemetry
    wait_until(sim, lambda: pen.link.stats.telemetry_lost - before >= 5, timeout_s=1.0)
    assert pen.link.stats.telemetry_lost - before == 5


@pytest.mark.realtime
def test_controller_over_tcp(pen_sim_tcp):
    s, url = pen_sim_tcp
    with PenController.connect(url, calibration=true_calibration(s), lease_ms=300) as pen:
        run_needle(pen)
        wait_until(s, lambda: pen.telemetry.strokes > 0)
        pen.stop_needle()
        assert pen.state is State.ARMED and s.firmware.state is FirmwareState.ARMED


@pytest.mark.realtime
def test_pen_found_by_usb_serial_number_wherever_it_is(pen_sim_pty, mocker):
    from types import SimpleNamespace

    from smpdevice.transport import resolve_port

    s, path = pen_sim_pty
    fake = SimpleNamespace(device=path, description="SMP pen", vid=0x1209, pid=0x5350,
                           serial_number="A1B2C3", manufacturer="smp")
    mocker.patch("serial.tools.list_ports.comports", return_value=[fake])  # the OS's list
    assert resolve_port("usb:A1B2C3") == path
    with PenController.connect("usb:A1B2C3", calibration=true_calibration(s)) as pen:
        assert pen.identity.serial == s.serial
    with pytest.raises(SmpError, match="no serial port with USB serial number 'ZZZ'.*A1B2C3"):
        resolve_port("usb:ZZZ")


def test_safe_to_call_from_several_threads(sim, pen):
    import threading

    pen.set_zone("crown")
    errors: list[BaseException] = []
    before = sim.firmware.executed[MsgType.SET_SETPOINTS]

    def worker(k: int) -> None:
        try:
            for i in range(25):
                pen.set_setpoints(depth_mm=0.3 + (k * 25 + i) / 500, speed_hz=100,
                                  duty_pct=40, period_ms=100)
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert sim.firmware.executed[MsgType.SET_SETPOINTS] - before == 100
    assert pen.link.stats.timeouts == 0


def test_a_needle_found_running_at_connect_is_stopped_never_adopted(sim):
    from firmware_protocol import messages as m
    from simulators.testing import PenHost

    wait_until(sim, lambda: sim.firmware.state is FirmwareState.IDLE)  # booted
    other = sim.open_port()  # another host started the needle with a long lease, then left
    host = PenHost(other)
    for message in (m.IdentifyRequest(), m.SetSetpoints(800, 10000, 400, 100000),
                    m.LeaseRenew(2000), m.Arm(), m.NeedleStart()):
        assert host.request(message) is not None
    assert sim.firmware.state is FirmwareState.RUNNING
    other.close()
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        assert pen.state is State.IDLE
        assert sim.firmware.state is FirmwareState.IDLE


@pytest.mark.realtime  # real TCP sockets
def test_reconnect_refuses_a_different_pen_on_the_same_port():
    from simulators.reach import TcpBridge

    with PenSimulator(seed=1) as first, PenSimulator(seed=2) as second:
        bridge = TcpBridge(first)
        port = bridge.port
        pen = PenController.connect(bridge.url, calibration=true_calibration(first))
        bridge.close()  # the cable is pulled ...
        pen.wait_for_state(State.DISCONNECTED, timeout_s=2.0)
        with TcpBridge(second, port=port):  # ... and another pen is plugged in
            for _ in range(2):  # and again: the refused pen was never taken on
                with pytest.raises(HandshakeError, match=f"different pen \\({second.serial}\\)"):
                    pen.reconnect()
                assert pen.state is State.DISCONNECTED
                assert pen.identity is not None and pen.identity.serial == first.serial


def test_set_calibration_refuses_none_with_the_fix(pen):
    with pytest.raises(CalibrationError, match="smp calibrate"):
        pen.set_calibration(None)
    assert pen.calibration is not None  # the valid one stays


# ---------------------------------------------------------------- findings of the safety review


def test_a_needle_started_behind_the_controllers_back_is_stopped(sim, pen):
    """Whatever made the pen run without a confirmed start (a start whose replies were all
    lost, another host), the controller stops it and goes to fault; it never renews it."""
    from firmware_protocol import messages as m
    from simulators.testing import PenHost

    other = PenHost(sim.open_port())
    for message in (m.SetSetpoints(800, 10000, 400, 100000), m.LeaseRenew(2000), m.Arm(),
                    m.NeedleStart()):
        assert other.request(message) is not None
    pen.wait_for_state(State.FAULT, timeout_s=1.0)
    assert "without a confirmed start" in str(pen.last_fault)
    wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING, timeout_s=1.0)


def test_reopen_after_a_silent_link_loss_works(sim, pen):
    sim.link.stall(sim.firmware.time_s())
    pen.wait_for_state(State.DISCONNECTED, timeout_s=2.0)
    sim.link.unstall()
    pen.close()
    pen.open()
    sim.time.sleep(0.3)  # nothing left over from the old connection may kill the new one
    assert pen.state in (State.IDLE, State.FAULT)
    pen.set_zone("crown")


def test_slow_telemetry_is_not_taken_for_a_lost_link(sim):
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               lease_ms=200, telemetry_hz=1) as pen:
        sim.time.sleep(1.5)
        assert pen.state is State.IDLE


def test_a_listener_cannot_deadlock_the_controller(sim, pen):
    seen: list[BaseException] = []

    def on_state(old, new, reason):
        if new is State.RUNNING:
            try:
                pen.set_setpoints(**CROWN)
            except StateError as exc:
                seen.append(exc)

    pen.add_state_listener(on_state)
    t0 = sim.clock.now()
    run_needle(pen)
    assert sim.clock.now() - t0 < 2.0  # virtual seconds: no call waited out a timeout
    assert seen and "listener" in str(seen[0])
    assert pen.state is State.RUNNING


def test_start_after_a_retract_asks_for_setpoints(pen):
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    pen.retract()
    with pytest.raises(StateError, match="call set_setpoints"):
        pen.start_needle()
