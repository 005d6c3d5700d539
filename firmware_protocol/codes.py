"""The one registry of codes: message types, NACK reasons, fault flags, firmware states, events.

Every other module (encoder, simulator, controller, docs) takes its codes from here. Each enum
member carries a one-line description, so the published table in docs/protocol.md and the
error messages of the host come from the same text (grbl publishes its codes the same way).
"""

from __future__ import annotations

from enum import IntEnum, IntFlag


class _Described(IntEnum):
    """An IntEnum whose members are `value, description`; `Member.description` is the text."""

    description: str

    def __new__(cls, value: int, description: str = ""):
        obj = int.__new__(cls, value)
        obj._value_ = value
        obj.description = description
        return obj


class MsgType(_Described):
    """Message type byte. Host -> pen below 0x40, pen -> host from 0x40."""

    IDENTIFY_REQUEST = 0x01, "host asks the pen who it is (first message of every connection)"
    PING = 0x02, "host checks the link; the pen answers PONG with the same token"
    SET_SETPOINTS = 0x03, "absolute depth, speed, duty and pulse period"
    ARM = 0x04, "idle -> armed: the pen may start the needle on NEEDLE_START"
    DISARM = 0x05, "armed -> idle"
    NEEDLE_START = 0x06, "armed -> running; needs a live lease and setpoints"
    NEEDLE_STOP = 0x07, "running -> armed; accepted in every state but booting"
    RETRACT = 0x08, "stop the needle and drive the depth actuator to 0"
    LEASE_RENEW = 0x09, "dead-man heartbeat: the needle may run for lease_ms from now"
    ESTOP = 0x0A, "emergency stop, valid in every state, latches until CLEAR_FAULTS"
    CLEAR_FAULTS = 0x0B, "clear latched faults and E-stop once their cause is gone"
    SET_TELEMETRY_RATE = 0x0C, "telemetry frames per second (0 = off)"
    CALIBRATION_READ = 0x0D, "ask for the calibration table stored on the pen"
    CALIBRATION_WRITE = 0x0E, "store a calibration table on the pen (idle only)"
    SET_FOOTSWITCH = 0x0F, "footswitch mode: whether the needle runs only while the pedal is down"
    ACK = 0x41, "command accepted (or a duplicate of one already executed)"
    NACK = 0x42, "command refused, with a reason code"
    IDENTIFY = 0x43, "pen identity, firmware, schema hash and hard limits"
    PONG = 0x44, "answer to PING"
    TELEMETRY = 0x45, "periodic measurements, sequence numbered"
    EVENT = 0x46, "unsolicited report: fault latched, E-stop, boot, lease expiry"
    CALIBRATION_TABLE = 0x47, "answer to CALIBRATION_READ"


class NackReason(_Described):
    """Why the pen refused a command (NACK.reason)."""

    BAD_STATE = 1, "the command is not valid in the pen's current state"
    OUT_OF_LIMITS = 2, "a value is outside the pen's hard limits (NACK.detail names the field)"
    NO_LEASE = 3, "NEEDLE_START without a live lease: send LEASE_RENEW first"
    FAULT_LATCHED = 4, "a fault is latched: clear it with CLEAR_FAULTS"
    ESTOP_LATCHED = 5, "E-stop is latched: clear it with CLEAR_FAULTS"
    BAD_PAYLOAD = 6, "reserved: never sent by a protocol-1 pen (field errors are OUT_OF_LIMITS)"
    BOOTING = 7, "the pen is still booting"
    NO_CARTRIDGE = 8, "no cartridge is fitted"
    CONDITION_ACTIVE = 9, "CLEAR_FAULTS refused: the cause of a fault is still present"
    NO_SETPOINTS = 10, "ARM or NEEDLE_START before any SET_SETPOINTS"
    UNSUPPORTED = 11, ("CALIBRATION_READ/_WRITE on a pen without Capability CALIBRATION_TABLE, "
                       "or SET_FOOTSWITCH REQUIRED on a pen without Capability FOOTSWITCH")
    FOOTSWITCH_UP = 12, ("NEEDLE_START in footswitch mode REQUIRED while the pedal is up: "
                         "press the pedal, then start again")


class LimitField(_Described):
    """NACK.detail for OUT_OF_LIMITS: which field broke a hard limit (0 = none)."""

    NONE = 0, "no field"
    DEPTH = 1, "depth_um"
    SPEED = 2, "speed_centihz"
    DUTY = 3, "duty_permille"
    PERIOD = 4, "period_us"
    LEASE = 5, "lease_ms"
    TELEMETRY_RATE = 6, "rate_hz"
    CALIBRATION = 7, "calibration table"
    FOOTSWITCH_MODE = 8, "mode"


class Fault(IntFlag):
    """Latched fault flags (TELEMETRY.faults, EVENT.faults). Any set flag stops the needle."""

    OVERCURRENT = 0x0001
    OVERTEMPERATURE = 0x0002
    JAM = 0x0004
    ENCODER_LOSS = 0x0008
    DEPTH_OUT_OF_BAND = 0x0010
    LEASE_EXPIRED = 0x0020
    CARTRIDGE_REMOVED = 0x0040
    POWER_RESET = 0x0080

    @property
    def names(self) -> list[str]:
        """Names of the flags set, in bit order (empty for no fault)."""
        value = self._value_  # the flags from one table: `f in self` per member cost 14 us
        return [name for bit, name in _FAULT_BITS if value & bit] if value else []


_FAULT_BITS = tuple((f._value_, f.name) for f in Fault if f.name)  # in bit order

FAULT_DESCRIPTIONS: dict[Fault, str] = {
    Fault.OVERCURRENT: "motor current above the pen's hard limit",
    Fault.OVERTEMPERATURE: "motor or body temperature above the pen's hard limit",
    Fault.JAM: "the needle stalled: speed collapsed while the motor was driven",
    Fault.ENCODER_LOSS: "no encoder edges while the motor was driven: speed cannot be regulated",
    Fault.DEPTH_OUT_OF_BAND: "measured depth left the band around the commanded depth",
    Fault.LEASE_EXPIRED: "the host stopped renewing its lease; the pen stopped and retracted",
    Fault.CARTRIDGE_REMOVED: "the cartridge was removed while armed or running",
    Fault.POWER_RESET: "the pen rebooted (brownout or watchdog); acknowledge before use",
}


class FirmwareState(_Described):
    """The pen's own state (TELEMETRY.state, EVENT.state)."""

    BOOTING = 0, "starting up; E-stop, identify and ping act, other commands are NACKed BOOTING"
    IDLE = 1, "needle stopped, not armed"
    ARMED = 2, "ready: the needle starts on NEEDLE_START"
    RUNNING = 3, "the needle is running"
    FAULT = 4, "a fault is latched; the needle is stopped and retracted"
    ESTOP = 5, "E-stop is latched; the needle is stopped and retracted"


class EventCode(_Described):
    """EVENT.event: why the pen spoke without being asked."""

    BOOTED = 1, "the pen finished booting"
    FAULT_LATCHED = 2, "one or more faults latched (EVENT.faults)"
    ESTOP_LATCHED = 3, "E-stop latched"
    CLEARED = 4, "faults and E-stop were cleared"
    STATE_CHANGED = 5, "the firmware state changed (EVENT.state)"
    FOOTSWITCH_RELEASED = 6, ("footswitch mode REQUIRED: the pedal was released while RUNNING, "
                              "the pen stopped the needle (state ARMED)")


class FootswitchMode(_Described):
    """SET_FOOTSWITCH.mode: what the pedal means to the firmware (OFF after every boot)."""

    OFF = 0, "the pedal is only reported (TELEMETRY.flags FOOTSWITCH); the needle ignores it"
    OPTIONAL = 1, "as OFF for the firmware: the host shows the pedal, the needle ignores it"
    REQUIRED = 2, ("the needle runs only while the pedal is down: NEEDLE_START with the pedal "
                   "up is NACKed FOOTSWITCH_UP, a release while RUNNING stops the needle "
                   "within one tick (-> ARMED, EVENT FOOTSWITCH_RELEASED)")


class Capability(IntFlag):
    """IDENTIFY.capabilities bits."""

    CALIBRATION_TABLE = 0x0001
    FOOTSWITCH = 0x0002
    TELEMETRY_1KHZ = 0x0004
    SIMULATED = 0x0008  # a simulator, not a pen: records made on it say so


class TelemetryFlag(IntFlag):
    """TELEMETRY.flags bits."""

    NEEDLE_RUNNING = 0x01
    FOOTSWITCH = 0x02
    CARTRIDGE_PRESENT = 0x04
    LEASE_ACTIVE = 0x08
