"""The message catalogue: every message with its typed fields, wire format and units.

The catalogue is the source of truth (as in MAVLink): the struct formats, the per-message CRC
seed (`crc_extra`) and the schema hash are all derived from the declarations below, so changing a
field changes the hash and a host and a pen built from different catalogues refuse each other.

All multi-byte fields are little-endian. Physical values travel as integers in the unit named by
the field (`depth_um`, `speed_centihz`, `duty_permille`, `period_us`, ...): exact, no float
rounding at a limit. `firmware_protocol.units` converts to and from the host's float units.
"""

from __future__ import annotations

import binascii
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import (
    Annotated,
    ClassVar,
    TypeVar,
    dataclass_transform,
    get_args,
    get_origin,
)

from firmware_protocol.codes import MsgType

PROTOCOL_VERSION = 1
CALIBRATION_POINTS = 8  # fixed-size table keeps every message fixed-size (see docs/protocol.md)


@dataclass(frozen=True)
class Wire:
    """How a field travels: struct code, unit, meaning."""

    code: str
    unit: str = ""
    doc: str = ""


def _w(code: str, unit: str = "", doc: str = ""):
    return Wire(code, unit, doc)


class Message:
    """Base of every message. Subclasses are dataclasses decorated with `@message`."""

    __slots__ = ()

    TYPE: ClassVar[MsgType]
    STRUCT: ClassVar[struct.Struct]
    WIRE: ClassVar[tuple[tuple[str, Wire], ...]]
    CRC_EXTRA: ClassVar[int]
    SIZE: ClassVar[int]

    def pack(self) -> bytes:
        return self.STRUCT.pack(*[getattr(self, name) for name, _ in self.WIRE])

    @classmethod
    def unpack_from(cls, buf, offset: int = 0) -> Message:
        return cls(*cls.STRUCT.unpack_from(buf, offset))

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]  # every Message subclass is a dataclass (@message)


REGISTRY: dict[int, type[Message]] = {}
_M = TypeVar("_M", bound="type[Message]")


@dataclass_transform()  # type checkers see each message as the dataclass it becomes
def message(type_code: MsgType) -> Callable[[_M], _M]:
    """Class decorator: make a slotted dataclass and register it in the catalogue.

    Not frozen: a frozen dataclass costs ~2 µs per construction, most of the decode budget.
    Treat messages as values all the same.
    """

    def wrap(cls: _M) -> _M:
        cls = dataclass(slots=True)(cls)  # type: ignore[assignment]  # the same class, slotted
        wire: list[tuple[str, Wire]] = []
        for f in fields(cls):  # type: ignore[arg-type]  # a dataclass since the line above
            hint = _hint(f.type, cls.__module__)
            if get_origin(hint) is not Annotated:
                raise TypeError(f"{cls.__name__}.{f.name} has no Wire annotation")
            wire.append((f.name, next(a for a in get_args(hint) if isinstance(a, Wire))))
        cls.TYPE = type_code
        cls.WIRE = tuple(wire)
        cls.STRUCT = struct.Struct("<" + "".join(w.code for _, w in wire))
        cls.pack = _packer(cls.STRUCT, [name for name, _ in wire])  # type: ignore[method-assign,assignment]
        cls.SIZE = cls.STRUCT.size
        cls.CRC_EXTRA = _crc_extra(cls)
        if type_code in REGISTRY:
            raise ValueError(f"type 0x{type_code:02x} registered twice")
        REGISTRY[int(type_code)] = cls
        return cls

    return wrap


def _hint(annotation: object, module: str) -> object:
    """A field's annotation as `get_type_hints(include_extras=True)` gives it, evaluated in
    the module that declared its class, once per distinct text there: `get_type_hints`
    compiled every annotation of the class and its bases for each message (about two thirds
    of this module's import, which every `smp` process pays)."""
    if not isinstance(annotation, str):
        return annotation
    hint = _HINTS.get((module, annotation))
    if hint is None:  # that module's own source, as get_type_hints evaluates it
        hint = _HINTS[module, annotation] = eval(annotation, vars(sys.modules[module]))
    return hint


_HINTS: dict[tuple[str, str], object] = {}


def _packer(layout: struct.Struct, names: list[str]) -> Callable[[Message], bytes]:
    """`Message.pack` for one class, with its fields read by one attrgetter (the same bytes)."""
    if not names:
        empty = layout.pack()
        return lambda _self: empty
    get = attrgetter(*names)
    if len(names) == 1:
        return lambda self: layout.pack(get(self))
    return lambda self: layout.pack(*get(self))


def _layout(cls) -> str:
    return f"{cls.__name__}:{int(cls.TYPE)}:" + ",".join(f"{n}/{w.code}" for n, w in cls.WIRE)


def _crc_extra(cls) -> int:
    """One byte from the message's own layout, folded into its frame CRC (MAVLink's CRC_EXTRA)."""
    crc = binascii.crc_hqx(_layout(cls).encode(), 0xFFFF)
    return (crc >> 8) ^ (crc & 0xFF)


# Field annotations used more than once.
U8 = Annotated[int, _w("B")]
Depth = Annotated[int, _w("h", "µm", "actuator depth: needle protrusion past the cartridge tip")]
SerialNo = Annotated[bytes, _w("12s", "ASCII", "pen serial number, NUL padded")]


# ----------------------------------------------------------------------------- host -> pen


@message(MsgType.IDENTIFY_REQUEST)
class IdentifyRequest(Message):
    pass


@message(MsgType.PING)
class Ping(Message):
    token: Annotated[int, _w("I", "", "any value; echoed in PONG")]


@message(MsgType.SET_SETPOINTS)
class SetSetpoints(Message):
    depth_um: Annotated[int, _w("h", "µm", "actuator depth command (after host calibration)")]
    speed_centihz: Annotated[int, _w("H", "0.01 Hz", "needle strokes per second x 100")]
    duty_permille: Annotated[int, _w("H", "0.1 %", "share of each pulse period the needle runs")]
    period_us: Annotated[int, _w("I", "µs", "pulse period: one impression per period")]


@message(MsgType.ARM)
class Arm(Message):
    pass


@message(MsgType.DISARM)
class Disarm(Message):
    pass


@message(MsgType.NEEDLE_START)
class NeedleStart(Message):
    pass


@message(MsgType.NEEDLE_STOP)
class NeedleStop(Message):
    pass


@message(MsgType.RETRACT)
class Retract(Message):
    pass


@message(MsgType.LEASE_RENEW)
class LeaseRenew(Message):
    lease_ms: Annotated[int, _w("H", "ms", "the needle may run until now + lease_ms")]


@message(MsgType.ESTOP)
class EStop(Message):
    pass


@message(MsgType.CLEAR_FAULTS)
class ClearFaults(Message):
    pass


@message(MsgType.SET_TELEMETRY_RATE)
class SetTelemetryRate(Message):
    rate_hz: Annotated[int, _w("H", "Hz", "telemetry frames per second, 0 = off (a busy "
                                            "link gets fewer: section 12)")]


@message(MsgType.CALIBRATION_READ)
class CalibrationRead(Message):
    pass


CalPoints = Annotated[
    bytes,
    _w(f"{CALIBRATION_POINTS * 4}s", "µm pairs",
       f"{CALIBRATION_POINTS} x (command_um i16, true_um i16), unused points zero"),
]


class _CalibrationBody(Message):
    """Shared helpers of CALIBRATION_WRITE and CALIBRATION_TABLE."""

    __slots__ = ()

    _POINT = struct.Struct("<hh")
    count: int  # fields of the two subclasses, declared here for the helpers
    written_at_s: int
    raw_points: bytes

    @classmethod
    def from_points(cls, points: list[tuple[int, int]], written_at_s: int):
        if len(points) > CALIBRATION_POINTS:
            raise ValueError(f"at most {CALIBRATION_POINTS} calibration points")
        raw = b"".join(cls._POINT.pack(c, t) for c, t in points)
        return cls(len(points), written_at_s,  # type: ignore[call-arg]  # subclasses' fields
                   raw.ljust(CALIBRATION_POINTS * 4, b"\0"))

    def points(self) -> list[tuple[int, int]]:
        n = min(self.count, CALIBRATION_POINTS)
        return [self._POINT.unpack_from(self.raw_points, 4 * i) for i in range(n)]


@message(MsgType.CALIBRATION_WRITE)
class CalibrationWrite(_CalibrationBody):
    count: Annotated[int, _w("B", "", f"points in use, 0..{CALIBRATION_POINTS}")]
    written_at_s: Annotated[int, _w("I", "s", "Unix time the table was made")]
    raw_points: CalPoints


@message(MsgType.SET_FOOTSWITCH)
class SetFootswitch(Message):
    mode: Annotated[int, _w("B", "", "FootswitchMode: OFF, OPTIONAL or REQUIRED")]


# ----------------------------------------------------------------------------- pen -> host


@message(MsgType.ACK)
class Ack(Message):
    acked_type: Annotated[int, _w("B", "", "type of the command acknowledged")]


@message(MsgType.NACK)
class Nack(Message):
    acked_type: Annotated[int, _w("B", "", "type of the command refused")]
    reason: Annotated[int, _w("B", "", "NackReason")]
    detail: Annotated[int, _w("B", "", "LimitField for OUT_OF_LIMITS, else 0")]


@message(MsgType.IDENTIFY)
class Identify(Message):
    """Layout frozen for every protocol version, so a mismatch is always readable."""

    protocol_version: Annotated[int, _w("B", "", "PROTOCOL_VERSION of the pen's catalogue")]
    schema_hash: Annotated[int, _w("I", "", "CRC-32 of the pen's message catalogue")]
    fw_major: U8
    fw_minor: U8
    fw_patch: U8
    serial: SerialNo
    capabilities: Annotated[int, _w("H", "", "Capability bits")]
    depth_min_um: Depth
    depth_max_um: Depth
    speed_min_centihz: Annotated[int, _w("H", "0.01 Hz")]
    speed_max_centihz: Annotated[int, _w("H", "0.01 Hz")]
    duty_min_permille: Annotated[int, _w("H", "0.1 %")]
    duty_max_permille: Annotated[int, _w("H", "0.1 %")]
    period_min_us: Annotated[int, _w("I", "µs")]
    period_max_us: Annotated[int, _w("I", "µs")]
    current_max_ma: Annotated[int, _w("H", "mA", "overcurrent trip")]
    temp_max_centideg_c: Annotated[int, _w("h", "0.01 °C", "overtemperature trip")]
    lease_max_ms: Annotated[int, _w("H", "ms", "longest lease the pen grants")]
    telemetry_max_hz: Annotated[int, _w("H", "Hz")]

    @property
    def serial_str(self) -> str:
        return self.serial.rstrip(b"\0").decode("ascii", "replace")

    @property
    def firmware_version(self) -> str:
        return f"{self.fw_major}.{self.fw_minor}.{self.fw_patch}"


@message(MsgType.PONG)
class Pong(Message):
    token: Annotated[int, _w("I", "", "token of the PING")]


@message(MsgType.TELEMETRY)
class Telemetry(Message):
    telemetry_seq: Annotated[int, _w("I", "", "counts every telemetry frame since boot, sent or "
                                                  "skipped (section 12)")]
    uptime_ms: Annotated[int, _w("I", "ms", "time since boot")]
    state: Annotated[int, _w("B", "", "FirmwareState")]
    faults: Annotated[int, _w("H", "", "latched Fault flags")]
    flags: Annotated[int, _w("B", "", "TelemetryFlag bits")]
    depth_um: Annotated[int, _w("h", "µm", "measured actuator depth")]
    depth_cmd_um: Annotated[int, _w("h", "µm", "actuator depth the pen is driving to")]
    speed_centihz: Annotated[int, _w("H", "0.01 Hz", "measured stroke rate (encoder)")]
    current_ma: Annotated[int, _w("H", "mA", "motor current")]
    temp_centideg_c: Annotated[int, _w("h", "0.01 °C", "motor temperature")]
    strokes: Annotated[int, _w("I", "", "needle strokes since boot")]
    impressions: Annotated[int, _w("I", "", "impressions (bursts) since boot")]
    lease_remaining_ms: Annotated[int, _w("H", "ms", "0 when no lease is live")]


@message(MsgType.EVENT)
class Event(Message):
    event: Annotated[int, _w("B", "", "EventCode")]
    state: Annotated[int, _w("B", "", "FirmwareState after the event")]
    faults: Annotated[int, _w("H", "", "latched Fault flags after the event")]
    uptime_ms: Annotated[int, _w("I", "ms", "time since boot")]


@message(MsgType.CALIBRATION_TABLE)
class CalibrationTable(_CalibrationBody):
    count: Annotated[int, _w("B", "", f"points in use, 0..{CALIBRATION_POINTS}")]
    written_at_s: Annotated[int, _w("I", "s", "Unix time the table was made, 0 = none")]
    raw_points: CalPoints


def _schema_hash() -> int:
    text = f"v{PROTOCOL_VERSION};" + ";".join(_layout(REGISTRY[t]) for t in sorted(REGISTRY))
    return binascii.crc32(text.encode())


SCHEMA_HASH: int = _schema_hash()
HOST_TO_PEN = frozenset(t for t in REGISTRY if t < 0x40)
PEN_TO_HOST = frozenset(t for t in REGISTRY if t >= 0x40)
