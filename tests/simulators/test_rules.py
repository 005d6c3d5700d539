"""Every cell of firmware_protocol.rules: ACCEPTED_IN, refusal(), TRANSITIONS, EXTRA_CHECKS."""

from __future__ import annotations

import pytest

from firmware_protocol import messages as m
from firmware_protocol import rules
from firmware_protocol.codes import Capability, FootswitchMode, LimitField, MsgType
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from simulators import DeviceFault
from tests.simulators.helpers import VALID_SETPOINTS, drive_to, make, state, valid_command

_REFUSALS = {R.BAD_STATE, R.BOOTING, R.FAULT_LATCHED, R.ESTOP_LATCHED}
_CELLS = [(t, s) for t in rules.ACCEPTED_IN for s in S]


@pytest.mark.parametrize(("mtype", "start"), _CELLS, ids=[f"{t.name}-{s.name}" for t, s in _CELLS])
def test_accepted_in_and_transitions(mtype: MsgType, start: S) -> None:
    sim, host = drive_to(start)
    reply = host.request(valid_command(mtype))
    if rules.accepts(mtype, start):
        assert reply.TYPE != MsgType.NACK, reply
        expected = rules.TRANSITIONS.get(mtype, {}).get(start, start)
        assert state(sim) is expected
    else:
        assert reply.TYPE == MsgType.NACK
        assert (reply.acked_type, reply.reason) == (mtype, rules.refusal(start))
        assert reply.reason in _REFUSALS
        assert state(sim) is start
    sim.close()


def test_replies_carry_the_command_seq() -> None:
    _sim, host = make()
    host.send(m.Ping(7), seq=42)
    host.send(m.Arm(), seq=43)
    host.poll()
    replies = host.replies
    assert [(f.seq, f.message.TYPE) for f in replies] == [(42, MsgType.PONG), (43, MsgType.NACK)]
    assert replies[0].message.token == 7


def test_unsolicited_frames_use_seq_0() -> None:
    sim, host = make()
    sim.advance(0.05)
    host.poll()
    assert host.telemetry and host.events
    unsolicited = (MsgType.TELEMETRY, MsgType.EVENT)
    assert {f.seq for f in host.frames if f.message.TYPE in unsolicited} == {0}


# ---------------------------------------------------------------- hard limits: NACK, never clamp

def _limit_cases():
    base = dict(depth_um=1000, speed_centihz=10000, duty_permille=500, period_us=100_000)
    edges = {
        "depth_um": (0, 2500, LimitField.DEPTH),
        "speed_centihz": (3000, 18000, LimitField.SPEED),
        "duty_permille": (50, 1000, LimitField.DUTY),
        "period_us": (20_000, 1_000_000, LimitField.PERIOD),
    }
    for name, (lo, hi, detail) in edges.items():
        yield pytest.param({**base, name: lo}, None, id=f"{name}-min")
        yield pytest.param({**base, name: hi}, None, id=f"{name}-max")
        yield pytest.param({**base, name: hi + 1}, detail, id=f"{name}-above")
        if lo > 0:
            yield pytest.param({**base, name: lo - 1}, detail, id=f"{name}-below")
    yield pytest.param({**base, "depth_um": -1}, LimitField.DEPTH, id="depth_um-negative")


@pytest.mark.parametrize(("fields", "detail"), list(_limit_cases()))
def test_setpoint_hard_limits(fields: dict, detail: LimitField | None) -> None:
    sim, host = make()
    reply = host.request(m.SetSetpoints(**fields))
    fw = sim.firmware
    if detail is None:
        assert reply.TYPE == MsgType.ACK
        assert fw.depth_cmd_um == fields["depth_um"]
        assert fw.speed_set_centihz == fields["speed_centihz"]
    else:
        assert (reply.TYPE, reply.reason, reply.detail) == (MsgType.NACK, R.OUT_OF_LIMITS, detail)
        assert not fw.has_setpoints  # refused whole: nothing clamped and applied
        assert fw.depth_cmd_um == 0


def test_limits_in_identify_match_the_model() -> None:
    sim, host = make()
    ident = host.request(m.IdentifyRequest())
    assert (ident.depth_min_um, ident.depth_max_um) == (0, 2500)
    assert (ident.speed_min_centihz, ident.speed_max_centihz) == (3000, 18000)
    assert (ident.duty_min_permille, ident.duty_max_permille) == (50, 1000)
    assert (ident.period_min_us, ident.period_max_us) == (20_000, 1_000_000)
    assert (ident.current_max_ma, ident.temp_max_centideg_c) == (1500, 5500)
    assert (ident.lease_max_ms, ident.telemetry_max_hz) == (2000, 1000)
    assert ident.serial_str == sim.serial and ident.serial_str.startswith("SMP-")


def test_identify_says_the_pen_is_simulated() -> None:
    _sim, host = make()
    caps = Capability(host.request(m.IdentifyRequest()).capabilities)
    assert Capability.SIMULATED in caps  # over a pty or TCP the host still knows it is no pen
    assert Capability.CALIBRATION_TABLE in caps and Capability.FOOTSWITCH in caps


@pytest.mark.parametrize(("lease_ms", "ok"), [(0, False), (1, True), (2000, True), (2001, False)])
def test_lease_limits(lease_ms: int, ok: bool) -> None:
    sim, host = make()
    reply = host.request(m.LeaseRenew(lease_ms))
    if ok:
        assert reply.TYPE == MsgType.ACK and sim.firmware.lease_remaining_ms() == lease_ms
    else:
        assert (reply.reason, reply.detail) == (R.OUT_OF_LIMITS, LimitField.LEASE)
        assert sim.firmware.lease_until_ms is None


@pytest.mark.parametrize(("rate", "ok"), [(0, True), (1000, True), (1001, False)])
def test_telemetry_rate_limits(rate: int, ok: bool) -> None:
    sim, host = make()
    reply = host.request(m.SetTelemetryRate(rate))
    host.poll()
    host.telemetry.clear()
    sim.advance(0.1)
    host.poll()
    if ok:
        assert reply.TYPE == MsgType.ACK
        assert len(host.telemetry) == rate // 10  # 100 ms of telemetry at `rate`
    else:
        assert (reply.reason, reply.detail) == (R.OUT_OF_LIMITS, LimitField.TELEMETRY_RATE)
        assert len(host.telemetry) == 10  # still the default 100 Hz


@pytest.mark.parametrize(
    "points",
    [[(3000, 100)], [(500, 100), (400, 200)], [(-1, 0)], [(100, -5)]],
    ids=["command-above-travel", "not-increasing", "negative-command", "negative-true"],
)
def test_calibration_write_limits(points) -> None:
    _sim, host = make()
    reply = host.request(m.CalibrationWrite.from_points(points, 5))
    assert (reply.reason, reply.detail) == (R.OUT_OF_LIMITS, LimitField.CALIBRATION)
    assert host.request(m.CalibrationRead()).count == 0


def test_calibration_write_too_many_points() -> None:
    _sim, host = make()
    msg = m.CalibrationWrite(9, 5, bytes(32))
    assert host.request(msg).detail == LimitField.CALIBRATION


def test_calibration_table_round_trip_and_survives_reboot() -> None:
    sim, host = make()
    table = m.CalibrationWrite.from_points([(500, 150), (1500, 1120), (2500, 2080)], 1_700_000_000)
    assert host.request(table).TYPE == MsgType.ACK
    sim.inject(DeviceFault.BROWNOUT)
    sim.advance(0.06)
    back = host.request(m.CalibrationRead())
    assert back.TYPE == MsgType.CALIBRATION_TABLE
    assert back.points() == table.points() and back.written_at_s == 1_700_000_000


# ---------------------------------------------------------------- the other extra checks, in order

def test_arm_checks_setpoints_then_cartridge() -> None:
    sim, host = make()
    sim.inject(DeviceFault.CARTRIDGE_REMOVED)
    assert host.request(m.Arm()).reason == R.NO_SETPOINTS  # first in EXTRA_CHECKS order
    host.request(VALID_SETPOINTS)
    assert host.request(m.Arm()).reason == R.NO_CARTRIDGE
    sim.clear(DeviceFault.CARTRIDGE_REMOVED)
    assert host.request(m.Arm()).TYPE == MsgType.ACK
    assert state(sim) is S.ARMED


def test_needle_start_checks_setpoints_cartridge_lease_in_order() -> None:
    sim, host = drive_to(S.ARMED)
    host.request(m.Retract())  # retracting forgets the setpoints
    sim.firmware.lease_until_ms = None
    sim.inject(DeviceFault.CARTRIDGE_REMOVED)  # no tick yet: the fault has not latched
    assert host.request(m.NeedleStart()).reason == R.NO_SETPOINTS
    host.request(VALID_SETPOINTS)
    assert host.request(m.NeedleStart()).reason == R.NO_CARTRIDGE
    sim.clear(DeviceFault.CARTRIDGE_REMOVED)
    assert host.request(m.NeedleStart()).reason == R.NO_LEASE
    host.request(m.LeaseRenew(100))
    host.request(m.SetFootswitch(FootswitchMode.REQUIRED))
    sim.release_pedal()
    assert host.request(m.NeedleStart()).reason == R.FOOTSWITCH_UP  # last: after the lease
    sim.press_pedal()
    assert host.request(m.NeedleStart()).TYPE == MsgType.ACK
    assert state(sim) is S.RUNNING


def test_extra_checks_table_is_what_the_firmware_checks() -> None:
    # every reason the rules list is one the firmware knows (unknown ones would always refuse)
    known = {R.OUT_OF_LIMITS, R.NO_SETPOINTS, R.NO_CARTRIDGE, R.NO_LEASE, R.CONDITION_ACTIVE,
             R.FOOTSWITCH_UP, R.UNSUPPORTED}
    assert {r for checks in rules.EXTRA_CHECKS.values() for r in checks} <= known


def test_clear_faults_in_idle_acks_and_changes_nothing() -> None:
    # docs/protocol.md s7: nothing to clear, so no state change and no EVENT CLEARED.
    sim, host = make()
    host.poll()
    before = len(host.events)
    assert host.request(m.ClearFaults()).TYPE == MsgType.ACK
    host.poll()
    assert len(host.events) == before and state(sim) is S.IDLE


def test_boot_takes_50ms_then_idle_with_booted_event() -> None:
    sim, host = make(boot=False)
    assert state(sim) is S.BOOTING
    assert host.request(m.Arm()).reason == R.BOOTING
    sim.advance(0.049)
    assert state(sim) is S.BOOTING
    sim.advance(0.001)
    assert state(sim) is S.IDLE
    host.poll()
    assert [(e.event, e.state, e.uptime_ms) for e in host.events] == [(1, S.IDLE, 50)]


def test_identify_answers_while_booting() -> None:
    _sim, host = make(boot=False)
    assert host.request(m.IdentifyRequest()).TYPE == MsgType.IDENTIFY
    assert host.request(m.Ping(1)).TYPE == MsgType.PONG
