"""The pen's firmware: command execution, state machine, lease, fault latching, telemetry.

Pure and driven by calls, like firmware under a test harness: `receive(data)` feeds bytes from
the host, `advance_to(t_s)` runs the 1 ms firmware ticks up to a clock time, `take_frames()`
hands the frames the pen wrote to whatever transport carries them. No threads, no I/O.

The rules come from `firmware_protocol.rules` (ACCEPTED_IN, EXTRA_CHECKS in their order,
TRANSITIONS, refusal()). Choices the rules leave open, made here:
- Replies carry the command's frame seq; TELEMETRY and EVENT frames carry seq 0.
- Duplicates (rules.DEDUPLICATED): the last 16 (seq, type, payload) keys map to their reply
  frame, ACK or NACK; a repeat gets the same reply again and is not executed. ESTOP is never
  deduplicated; IDENTIFY_REQUEST clears the window and is always answered afresh.
- SEQ 0 (rules.ACTS_WITH_SEQ_0): only ESTOP acts; other commands with SEQ 0 are ignored.
- A partial frame held for INTER_BYTE_TIMEOUT_MS with no new byte is given up
  (StreamDecoder.expire), so a command behind a truncated frame is not held back for long.
- Retracting (RETRACT, E-stop, any fault, reboot) forgets the setpoints: the host must send
  SET_SETPOINTS again before ARM / NEEDLE_START, so nothing resumes by itself.
- The depth actuator drives to the setpoints' depth in ARMED and RUNNING only, to 0 in every
  other state: DISARM and every move to IDLE retract (a pen not armed holds no needle out).
- The calibration table lives in the pen's EEPROM: it survives a reboot.
- The footswitch mode lives in RAM: OFF after every boot. In mode REQUIRED each tick checks the
  pedal before it drives the needle, so a release stops it within one tick (-> ARMED, EVENT
  FOOTSWITCH_RELEASED; setpoints and lease kept); pressing again starts nothing.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable

from firmware_protocol import codes, encode, rules
from firmware_protocol import messages as m
from firmware_protocol.codes import (
    EventCode,
    Fault,
    FirmwareState,
    FootswitchMode,
    MsgType,
    NackReason,
)
from firmware_protocol.frame import Frame, StreamDecoder
from firmware_protocol.messages import CALIBRATION_POINTS, HOST_TO_PEN
from firmware_protocol.timing import DEDUP_WINDOW, INTER_BYTE_TIMEOUT_MS
from simulators.clock import Clock
from simulators.firmware_commands import FirmwareCommands
from simulators.pen_model import PenModel
from simulators.physics import TICK_S, PenPhysics

S = FirmwareState


_OVERCURRENT, _OVERTEMPERATURE = int(Fault.OVERCURRENT), int(Fault.OVERTEMPERATURE)
_DEPTH_OUT_OF_BAND, _CARTRIDGE_REMOVED = int(Fault.DEPTH_OUT_OF_BAND), int(Fault.CARTRIDGE_REMOVED)
_JAM, _ENCODER_LOSS = int(Fault.JAM), int(Fault.ENCODER_LOSS)
_RUNNING, _REQUIRED = S.RUNNING, FootswitchMode.REQUIRED  # read once per tick
_EXTENDED = (S.ARMED, S.RUNNING)  # the only states in which the needle may be out
_TF = codes.TelemetryFlag
_TF_NEEDLE_RUNNING, _TF_FOOTSWITCH = int(_TF.NEEDLE_RUNNING), int(_TF.FOOTSWITCH)
_TF_CARTRIDGE_PRESENT, _TF_LEASE_ACTIVE = int(_TF.CARTRIDGE_PRESENT), int(_TF.LEASE_ACTIVE)


def _clamp(value: float, lo: int, hi: int) -> int:
    return max(lo, min(hi, round(value)))


class PenFirmware(FirmwareCommands):
    """One pen's firmware. Not thread-safe: the simulator serialises calls.

    Here: boot, ticks, lease, faults, telemetry and the receive path (decode, SEQ 0, the
    duplicate window, the E-stop's place in a read); what each command does is in `FirmwareCommands`
    (simulators/firmware_commands.py)."""

    def __init__(
        self, model: PenModel, clock: Clock, physics: PenPhysics | None = None
    ) -> None:
        self.model = model
        self.clock = clock
        self.physics = physics or PenPhysics(model)
        self.physics.cond.pedal_down = model.pedal_down_at_start
        self._epoch_s = clock.now()
        self.max_time_s = self._epoch_s + 1e305  # x 1000 stays finite; a VirtualClock stops there
        self.now_ms = 0  # firmware ticks since power-on of the simulator (never reset)
        self._expected_k = 1.0 - math.exp(-TICK_S / model.motor_tau_s)
        self.calibration = m.CalibrationTable(0, 0, bytes(CALIBRATION_POINTS * 4))
        self.executed: Counter[MsgType] = Counter()  # commands executed (not duplicates)
        self.duplicates = 0
        self.boots = 0
        self.on_frame: Callable[[bytes], None] | None = None
        self._out: list[tuple[int, bytes]] = []  # (firmware ms, frame)
        self._pending_events: list[EventCode] = []
        self._unannounced = False  # a fault latched in this tick, its EVENT not yet sent
        self._boot(Fault(0))

    # ------------------------------------------------------------------ boot and reset
    def _boot(self, faults: Fault) -> None:
        self.boots += 1
        self.state = S.BOOTING
        self._booting = True
        self._boot_at_ms = self.now_ms
        self.faults = faults
        self._reset_faults = faults  # why it booted: latched again when the boot completes
        self.decoder = StreamDecoder()
        self._rx_held = False  # bytes may be held in the decoder: checked once the line is quiet
        self._last_rx_ms = self.now_ms
        self._window: OrderedDict[tuple[int, int, bytes], bytes] = OrderedDict()
        self.lease_until_ms: int | None = None
        self.has_setpoints = False
        self.depth_cmd_um = 0
        self.speed_set_centihz = 0
        self.duty_permille = 0
        self.period_us = 0
        self.phase_us = 0
        self.impressions = 0
        self.telemetry_seq = 0
        self.telemetry_hz = self.model.telemetry_default_hz
        self._telemetry_acc = 0
        self.expected_hz = 0.0
        self._suspicious_ms = 0
        self.footswitch_mode = FootswitchMode.OFF

    def power_reset(self) -> None:
        """Brownout / watchdog reset: reboot and come up with POWER_RESET latched."""
        self._out.clear()  # what the UART had queued dies with the power
        self.physics.reboot()
        self._boot(Fault.POWER_RESET)

    def _finish_boot(self) -> None:
        self._booting = False
        # A brownout is reported whatever happened while booting: an E-stop's CLEAR_FAULTS
        # then cleared the E-stop, not the reset the host has not been told of yet (R03).
        self.faults |= self._reset_faults
        if self.state is S.BOOTING:
            self.state = S.FAULT if self.faults else S.IDLE
        self._event(EventCode.BOOTED)  # after a brownout: state FAULT, faults POWER_RESET

    @property
    def uptime_ms(self) -> int:
        return self.now_ms - self._boot_at_ms

    # ------------------------------------------------------------------ output
    def _emit(self, frame: bytes) -> None:
        self._out.append((self.now_ms, frame))
        if self.on_frame is not None:
            self.on_frame(frame)

    def _event(self, event: EventCode) -> None:
        msg = m.Event(int(event), int(self.state), int(self.faults), self.uptime_ms & 0xFFFFFFFF)
        self._emit(encode(msg, 0))

    @property
    def has_output(self) -> bool:
        """Whether frames were written since the last take."""
        return bool(self._out)

    def take_frames(self) -> list[bytes]:
        """Frames written since the last call, one bytes object per frame, in order."""
        out, self._out = self._out, []
        return [frame for _, frame in out]

    def take_timed_frames(self) -> list[tuple[float, bytes]]:
        """Like take_frames, each with the clock time (s) of the tick that wrote it."""
        out, self._out = self._out, []
        return [(self._epoch_s + ms / 1000, frame) for ms, frame in out]

    def time_s(self) -> float:
        """Clock time of the firmware's current tick."""
        return self._epoch_s + self.now_ms / 1000

    # ------------------------------------------------------------------ time
    def advance_to(self, t_s: float) -> None:
        """Run every firmware tick due up to clock time `t_s`."""
        try:
            target_ms = math.floor((t_s - self._epoch_s) * 1000 + 1e-6)
        except (ValueError, OverflowError, TypeError):  # NaN, inf, no number: never a tick
            raise ValueError(f"t_s={t_s!r} is refused: give the clock time in finite "
                             "seconds") from None
        while self.now_ms < target_ms:
            self.step()

    def step(self) -> None:
        """One 1 ms firmware tick: boot, lease, needle timing, physics, fault checks, telemetry."""
        now = self.now_ms = self.now_ms + 1
        if self._rx_held and now - self._last_rx_ms >= INTER_BYTE_TIMEOUT_MS:
            if self.decoder.buffered:
                self._handle(self.decoder.expire())  # the line went quiet mid-frame
            self._rx_held = self.decoder.buffered > 0
        if self._booting and now - self._boot_at_ms >= self.model.boot_ms:
            self._finish_boot()
        began = self.state  # faults are judged against the state the tick began in
        lease_until_ms = self.lease_until_ms
        if lease_until_ms is not None and now >= lease_until_ms:
            self._lease_lapsed()

        drive_hz = 0.0
        if self.state is _RUNNING:
            if self.footswitch_mode is _REQUIRED and not self.pedal_down():
                self._footswitch_released()  # -> ARMED: no drive in this tick
            else:
                period_us = self.period_us
                phase_us = self.phase_us
                if phase_us < period_us * self.duty_permille // 1000:
                    drive_hz = self.speed_set_centihz / 100
                phase_us += 1000
                if period_us > 0 and phase_us >= period_us:
                    # each period boundary crossed in this tick begins one impression
                    crossed, phase_us = divmod(phase_us, period_us)
                    self.impressions += crossed
                self.phase_us = phase_us
        self.physics.tick(drive_hz, self.depth_cmd_um if self.state in _EXTENDED else 0)
        self.expected_hz += (drive_hz - self.expected_hz) * self._expected_k
        if not self._booting:
            self._check_faults(drive_hz > 0, began)
            hz = self.telemetry_hz
            if hz > 0:  # telemetry: `hz` frames per 1000 ticks, evenly spread
                acc = self._telemetry_acc + hz
                if acc >= 1000:
                    self._telemetry_acc = acc - 1000
                    self._emit(encode(self.telemetry(), 0))
                    self.telemetry_seq += 1
                else:
                    self._telemetry_acc = acc

    def pedal_enables(self) -> bool:
        """Whether the footswitch lets the needle run (always, unless the mode is REQUIRED)."""
        return self.footswitch_mode is not FootswitchMode.REQUIRED or self.pedal_down()

    def pedal_down(self) -> bool:
        """The pedal is pressed (a pen without a footswitch never reports it pressed)."""
        return self.model.footswitch_fitted and self.physics.cond.pedal_down

    def _footswitch_released(self) -> None:
        """REQUIRED and the pedal is up while RUNNING: stop now, as NEEDLE_STOP would."""
        self.state = S.ARMED
        self.phase_us = 0
        self._event(EventCode.FOOTSWITCH_RELEASED)

    def _lease_lapsed(self) -> None:
        self.lease_until_ms = None
        if self.state is S.RUNNING:
            # cut now; one EVENT with what this tick's checks find too (protocol.md sec. 7)
            self._latch(Fault.LEASE_EXPIRED)
        elif self.state is S.ARMED:
            self.state = S.IDLE
            self._event(EventCode.STATE_CHANGED)

    # ------------------------------------------------------------------ faults
    def _check_faults(self, driven: bool, began: FirmwareState) -> None:
        phys, model = self.physics, self.model
        found = 0  # plain int bits: an IntFlag per tick costs more than the checks themselves
        if phys.current_a > model.current_max_a:
            found |= _OVERCURRENT
        if phys.temp_c > model.temp_max_c:
            found |= _OVERTEMPERATURE
        if abs(phys.position_um - phys.steps_um) > model.depth_band_um:
            found |= _DEPTH_OUT_OF_BAND
        if not phys.cond.cartridge_present and began in (S.ARMED, S.RUNNING):
            found |= _CARTRIDGE_REMOVED
        if driven:
            # Observer: the firmware knows the motor's time constant, so it predicts the speed
            # the drive should give and judges the encoder against it, over whole pulse trains.
            expected = self.expected_hz
            if expected > model.observer_min_hz:
                if phys.encoder_hz < model.observer_ratio * expected:
                    self._suspicious_ms += 1
                else:
                    self._suspicious_ms = 0
            if self._suspicious_ms >= model.observer_ms:
                self._suspicious_ms = 0
                found |= _JAM if phys.current_a > model.jam_detect_a else _ENCODER_LOSS
        if found:
            new = found & ~int(self.faults)
            if new:
                self._latch(Fault(new))
        if self._unannounced:  # every fault of this tick, the lease's included: one EVENT
            self._unannounced = False
            self._event(EventCode.FAULT_LATCHED)

    def _stop_and_retract(self) -> None:
        self.depth_cmd_um = 0
        self.has_setpoints = False
        self.phase_us = 0

    def _latch(self, faults: Fault) -> None:
        self.faults |= faults
        self._stop_and_retract()
        if self.state in (S.IDLE, S.ARMED, S.RUNNING):
            self.state = S.FAULT
        self._unannounced = True

    # ------------------------------------------------------------------ telemetry
    @property
    def actuator_cmd_um(self) -> int:
        """Where the depth actuator is driven (TELEMETRY.depth_cmd_um): the setpoints' depth
        in ARMED and RUNNING, else 0; `depth_cmd_um` is the setpoints' depth, kept."""
        return self.depth_cmd_um if self.state in _EXTENDED else 0

    def lease_remaining_ms(self) -> int:
        if self.lease_until_ms is None:
            return 0
        return max(0, min(0xFFFF, self.lease_until_ms - self.now_ms))

    def telemetry(self) -> m.Telemetry:
        """The TELEMETRY message for this instant."""
        phys = self.physics
        flags = 0  # TelemetryFlag bits as a plain int: IntFlag operations cost ~1 us each
        if self.state is _RUNNING:
            flags |= _TF_NEEDLE_RUNNING
        if self.pedal_down():
            flags |= _TF_FOOTSWITCH
        if phys.cond.cartridge_present:
            flags |= _TF_CARTRIDGE_PRESENT
        lease_until_ms = self.lease_until_ms
        if lease_until_ms is not None:
            flags |= _TF_LEASE_ACTIVE
        return m.Telemetry(
            self.telemetry_seq & 0xFFFFFFFF,
            (self.now_ms - self._boot_at_ms) & 0xFFFFFFFF,
            int(self.state),
            int(self.faults),
            flags,
            _clamp(phys.position_um, -32768, 32767),
            self.actuator_cmd_um,
            _clamp(phys.encoder_hz * 100, 0, 0xFFFF),
            _clamp(phys.current_a * 1000, 0, 0xFFFF),
            _clamp(phys.temp_c * 100, -32768, 32767),
            phys.strokes & 0xFFFFFFFF,
            self.impressions & 0xFFFFFFFF,
            self.lease_remaining_ms(),
        )

    # ------------------------------------------------------------------ commands
    def receive(self, data: bytes) -> None:
        """Bytes from the host, at the clock's current time (one read: see `_handle`)."""
        self.advance_to(self.clock.now())
        self.receive_now(data)

    def receive_now(self, data: bytes) -> None:
        """Bytes from the host, at the firmware's current tick (the simulator's entry point)."""
        self._last_rx_ms = self.now_ms
        self._rx_held = True
        self._handle(self.decoder.feed(data))

    def _handle(self, frames: list[Frame]) -> None:
        """The frames of one read (docs/protocol.md section 9): its ESTOPs act first, in wire
        order; then the others, in wire order, except that a command of
        rules.SUPERSEDED_BY_ESTOP (CLEAR_FAULTS) that came before the last ESTOP is superseded
        (NACK ESTOP_LATCHED, not executed): it never undoes an E-stop sent after it."""
        if len(frames) == 1:
            self._dispatch(frames[0])  # one frame: nothing to put first
            return
        last_estop = -1
        for i, frame in enumerate(frames):
            if frame.message.TYPE == MsgType.ESTOP:
                self._dispatch(frame)
                last_estop = i
        for i, frame in enumerate(frames):
            if frame.message.TYPE != MsgType.ESTOP:
                superseded = i < last_estop and frame.message.TYPE in rules.SUPERSEDED_BY_ESTOP
                self._dispatch(frame, superseded=superseded)

    def _dispatch(self, frame: Frame, superseded: bool = False) -> None:
        msg, seq = frame.message, frame.seq
        mtype = msg.TYPE  # already a MsgType: catalogue classes carry it
        if mtype not in HOST_TO_PEN:
            return  # a pen->host message echoed back: not a command, ignore it
        if seq == 0 and mtype not in rules.ACTS_WITH_SEQ_0:
            return  # the host never uses SEQ 0; its reply would look unsolicited
        if mtype in rules.CLEARS_WINDOW:
            self._window.clear()  # a new host connection: old sequence numbers mean nothing
        deduplicated = mtype in rules.DEDUPLICATED
        if deduplicated:
            key = (seq, int(mtype), msg.pack())
            cached = self._window.get(key)
            if cached is not None:
                self.duplicates += 1
                self._emit(cached)
                return
        if superseded:  # an ESTOP later in the same read: the pen decided, like any NACK
            reply = encode(m.Nack(int(mtype), int(NackReason.ESTOP_LATCHED), 0), seq)
        else:
            reply = encode(self._execute(mtype, msg), seq)
        if deduplicated:
            self._window[key] = reply
            while len(self._window) > DEDUP_WINDOW:
                self._window.popitem(last=False)
        self._emit(reply)
        if self._pending_events:
            self._after_reply()

    def _after_reply(self) -> None:
        pending, self._pending_events = self._pending_events, []
        for event in pending:
            self._event(event)
