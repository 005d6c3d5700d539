"""The pen firmware's command execution: state and extra checks, limits, one handler per command.

A mixin of `PenFirmware` (simulators/firmware.py), which owns the receive path (decoder,
SEQ 0, duplicate window, the E-stop's place in a read), the ticks, the lease, faults and
telemetry, and calls `_execute` once per command that gets past them. The rules come from
`firmware_protocol.rules` (ACCEPTED_IN, EXTRA_CHECKS in their order, transition(), refusal()).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from firmware_protocol import codes, rules
from firmware_protocol import messages as m
from firmware_protocol.codes import (
    EventCode,
    Fault,
    FirmwareState,
    FootswitchMode,
    LimitField,
    MsgType,
)
from firmware_protocol.codes import NackReason as R
from firmware_protocol.messages import CALIBRATION_POINTS, PROTOCOL_VERSION, SCHEMA_HASH

if TYPE_CHECKING:
    from collections import Counter

    from simulators.pen_model import PenModel
    from simulators.physics import PenPhysics

S = FirmwareState
DUTY_MAX_PERMILLE = 1000  # protocol.md SET_SETPOINTS: duty 'never above 1000'
_Handler = Callable[["FirmwareCommands", m.Message], "m.Message | None"]
_NO_STATE: frozenset[FirmwareState] = frozenset()
_CALIBRATION_COMMANDS = frozenset({MsgType.CALIBRATION_READ, MsgType.CALIBRATION_WRITE})


class FirmwareCommands:
    """What a command does once it is known to be a fresh, valid command for this pen."""

    # Owned by PenFirmware; declared here for the handlers.
    model: PenModel
    physics: PenPhysics
    state: FirmwareState
    faults: Fault
    executed: Counter[MsgType]
    calibration: m.CalibrationTable
    _booting: bool
    _pending_events: list[EventCode]
    lease_until_ms: int | None
    now_ms: int
    has_setpoints: bool
    depth_cmd_um: int
    speed_set_centihz: int
    duty_permille: int
    period_us: int
    phase_us: int
    impressions: int
    telemetry_hz: int
    _telemetry_acc: int
    footswitch_mode: FootswitchMode

    def pedal_enables(self) -> bool:
        raise NotImplementedError

    def _stop_and_retract(self) -> None:
        raise NotImplementedError

    def active_conditions(self) -> Fault:
        """Latched faults whose cause is still present (what CLEAR_FAULTS's self-test finds)."""
        phys, cond, model = self.physics, self.physics.cond, self.model
        active = Fault(0)
        if cond.winding_short:
            active |= Fault.OVERCURRENT
        if phys.temp_c > model.temp_max_c - model.temp_clear_hysteresis_c:
            active |= Fault.OVERTEMPERATURE
        if cond.jammed:
            active |= Fault.JAM
        if cond.encoder_lost:
            active |= Fault.ENCODER_LOSS
        if abs(phys.position_um - phys.steps_um) > model.depth_band_um:
            active |= Fault.DEPTH_OUT_OF_BAND
        if not cond.cartridge_present:
            active |= Fault.CARTRIDGE_REMOVED
        return active & self.faults

    def _execute(self, mtype: MsgType, msg: m.Message) -> m.Message:
        state = self.state
        if state not in rules.ACCEPTED_IN.get(mtype, _NO_STATE):  # rules.accepts, inlined
            return m.Nack(int(mtype), int(rules.refusal(state)), 0)
        if mtype in rules.EXTRA_CHECKS:
            reason, detail = self._check(mtype, msg)
            if reason is not None:
                return m.Nack(int(mtype), int(reason), int(detail))
        self.executed[mtype] += 1
        reply = self._HANDLERS[mtype](self, msg)
        # cleared an E-stop taken while booting: back to BOOTING, the boot is never skipped
        if mtype in rules.TRANSITIONS:  # PING, SET_SETPOINTS...: no state change to look up
            new_state = rules.transition(mtype, state, booted=not self._booting)
            if new_state is not None:
                self.state = new_state
        return reply or m.Ack(int(mtype))

    # Extra checks, in the order firmware_protocol.rules.EXTRA_CHECKS lists them.
    def _check(self, mtype: MsgType, msg: m.Message) -> tuple[R | None, LimitField]:
        for reason in rules.EXTRA_CHECKS.get(mtype, ()):
            detail = LimitField.NONE
            if reason is R.OUT_OF_LIMITS:
                detail = self._limit_violation(mtype, msg)
                failed = detail is not LimitField.NONE
            elif reason is R.NO_SETPOINTS:
                failed = not self.has_setpoints
            elif reason is R.NO_CARTRIDGE:
                failed = not self.physics.cond.cartridge_present
            elif reason is R.NO_LEASE:
                failed = self.lease_until_ms is None
            elif reason is R.CONDITION_ACTIVE:
                failed = bool(self.active_conditions())
            elif reason is R.FOOTSWITCH_UP:
                failed = not self.pedal_enables()
            elif reason is R.UNSUPPORTED and isinstance(msg, m.SetFootswitch):
                failed = msg.mode == FootswitchMode.REQUIRED and not self.model.footswitch_fitted
            elif reason is R.UNSUPPORTED and mtype in _CALIBRATION_COMMANDS:
                failed = False  # the simulated pen has its table (Capability CALIBRATION_TABLE)
            else:  # a check this firmware does not know: refuse rather than skip it
                failed = True
            if failed:
                return reason, detail
        return None, LimitField.NONE

    def _limit_violation(self, mtype: MsgType, msg) -> LimitField:
        md = self.model
        if mtype is MsgType.SET_SETPOINTS:
            depth_lo, depth_hi, speed_lo, speed_hi, duty_lo, duty_hi, period_lo, period_hi = \
                md.setpoint_limits()
            if not depth_lo <= msg.depth_um <= depth_hi:
                return LimitField.DEPTH
            if not speed_lo <= msg.speed_centihz <= speed_hi:
                return LimitField.SPEED
            # never above 100 %, whatever the model claims (a hostile pen's IDENTIFY)
            if not duty_lo <= msg.duty_permille <= min(duty_hi, DUTY_MAX_PERMILLE):
                return LimitField.DUTY
            if not period_lo <= msg.period_us <= period_hi:
                return LimitField.PERIOD
        elif mtype is MsgType.LEASE_RENEW:
            if not 1 <= msg.lease_ms <= md.lease_max_ms:
                return LimitField.LEASE
        elif mtype is MsgType.SET_TELEMETRY_RATE:
            if not 0 <= msg.rate_hz <= md.telemetry_max_hz:
                return LimitField.TELEMETRY_RATE
        elif mtype is MsgType.CALIBRATION_WRITE and not self._calibration_ok(msg):
            return LimitField.CALIBRATION
        elif mtype is MsgType.SET_FOOTSWITCH and msg.mode not in set(FootswitchMode):
            return LimitField.FOOTSWITCH_MODE
        return LimitField.NONE

    def _calibration_ok(self, msg: m.CalibrationWrite) -> bool:
        md = self.model
        if msg.count > CALIBRATION_POINTS or any(msg.raw_points[4 * msg.count :]):
            return False  # unused points must be zero
        points = msg.points()
        commands = [c for c, _ in points]
        if commands != sorted(set(commands)):  # strictly increasing commands
            return False
        return all(
            md.depth_min_um <= c <= md.depth_max_um and 0 <= t <= md.depth_max_um
            for c, t in points
        )

    # -- handlers: return a reply message, or None for a plain ACK
    def _identify_request(self, _msg) -> m.Message:
        md = self.model
        caps = codes.Capability.CALIBRATION_TABLE
        if md.footswitch_fitted:
            caps |= codes.Capability.FOOTSWITCH
        caps |= codes.Capability.SIMULATED  # records made with a simulator must say so
        if md.telemetry_max_hz >= 1000:
            caps |= codes.Capability.TELEMETRY_1KHZ
        return m.Identify(
            protocol_version=PROTOCOL_VERSION,
            schema_hash=SCHEMA_HASH,
            fw_major=md.fw_version[0],
            fw_minor=md.fw_version[1],
            fw_patch=md.fw_version[2],
            serial=md.serial.encode("ascii"),
            capabilities=int(caps),
            depth_min_um=md.depth_min_um,
            depth_max_um=md.depth_max_um,
            speed_min_centihz=md.speed_min_centihz,
            speed_max_centihz=md.speed_max_centihz,
            duty_min_permille=md.duty_min_permille,
            duty_max_permille=md.duty_max_permille,
            period_min_us=md.period_min_us,
            period_max_us=md.period_max_us,
            current_max_ma=md.current_max_ma,
            temp_max_centideg_c=md.temp_max_centideg_c,
            lease_max_ms=md.lease_max_ms,
            telemetry_max_hz=md.telemetry_max_hz,
        )

    def _ping(self, msg: m.Ping) -> m.Message:
        return m.Pong(msg.token)

    def _estop(self, _msg) -> None:
        self._stop_and_retract()
        if self.state is not S.ESTOP:
            self._pending_events = [EventCode.ESTOP_LATCHED]

    def _set_setpoints(self, msg: m.SetSetpoints) -> None:
        if self.state is S.RUNNING and self.phase_us >= msg.period_us:
            # the running impression already lasted a whole new period: the next begins now
            self.phase_us = 0
            self.impressions += 1
        self.depth_cmd_um = msg.depth_um
        self.speed_set_centihz = msg.speed_centihz
        self.duty_permille = msg.duty_permille
        self.period_us = msg.period_us
        self.has_setpoints = True

    def _needle_start(self, _msg) -> None:
        if self.state is S.ARMED:
            self.phase_us = 0
            self.impressions += 1  # the first pulse period begins now

    def _retract(self, _msg) -> None:
        self._stop_and_retract()

    def _lease_renew(self, msg: m.LeaseRenew) -> None:
        self.lease_until_ms = self.now_ms + msg.lease_ms

    def _clear_faults(self, _msg) -> None:
        self.faults = Fault(0)
        if self.state in (S.FAULT, S.ESTOP):  # in IDLE, ARMED, RUNNING: nothing to clear
            self._pending_events = [EventCode.CLEARED]  # sent after the ACK

    def _set_telemetry_rate(self, msg: m.SetTelemetryRate) -> None:
        self.telemetry_hz = msg.rate_hz
        self._telemetry_acc = 0

    def _calibration_read(self, _msg) -> m.Message:
        return self.calibration

    def _calibration_write(self, msg: m.CalibrationWrite) -> None:
        self.calibration = m.CalibrationTable(msg.count, msg.written_at_s, msg.raw_points)

    def _set_footswitch(self, msg: m.SetFootswitch) -> None:
        self.footswitch_mode = FootswitchMode(msg.mode)

    def _noop(self, _msg) -> None:
        return None

    _HANDLERS: ClassVar[dict[MsgType, _Handler]] = {
        MsgType.IDENTIFY_REQUEST: _identify_request,
        MsgType.PING: _ping,
        MsgType.SET_SETPOINTS: _set_setpoints,
        MsgType.ARM: _noop,
        MsgType.DISARM: _noop,
        MsgType.NEEDLE_START: _needle_start,
        MsgType.NEEDLE_STOP: _noop,
        MsgType.RETRACT: _retract,
        MsgType.LEASE_RENEW: _lease_renew,
        MsgType.ESTOP: _estop,
        MsgType.CLEAR_FAULTS: _clear_faults,
        MsgType.SET_TELEMETRY_RATE: _set_telemetry_rate,
        MsgType.CALIBRATION_READ: _calibration_read,
        MsgType.CALIBRATION_WRITE: _calibration_write,
        MsgType.SET_FOOTSWITCH: _set_footswitch,
    }
