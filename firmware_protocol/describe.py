"""Field values for people: codes by name, flags by name, wire integers in physical units.

Used by `smp protocol decode` and by the generated spec, so a field reads the same everywhere.
Pure: no I/O.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

from firmware_protocol.codes import (
    Capability,
    EventCode,
    Fault,
    FirmwareState,
    FootswitchMode,
    LimitField,
    MsgType,
    NackReason,
    TelemetryFlag,
)
from firmware_protocol.messages import CALIBRATION_POINTS, Message, Wire

# Which code table a field's integer comes from. Field names are the same in every message.
CODE_FIELDS: dict[str, type[enum.IntEnum] | type[enum.IntFlag]] = {
    "acked_type": MsgType,
    "reason": NackReason,
    "detail": LimitField,
    "state": FirmwareState,
    "event": EventCode,
    "faults": Fault,
    "flags": TelemetryFlag,
    "capabilities": Capability,
    "mode": FootswitchMode,
}

# Wire unit -> (divisor, host unit): how the integer becomes the host's float unit.
PHYSICAL: dict[str, tuple[int, str]] = {
    "µm": (1000, "mm"),
    "0.01 Hz": (100, "Hz"),
    "0.1 %": (10, "%"),
    "µs": (1000, "ms"),
    "mA": (1000, "A"),
    "0.01 °C": (100, "°C"),
}

_INT_RANGES: dict[str, tuple[int, int]] = {
    "B": (0, 0xFF),
    "b": (-0x80, 0x7F),
    "H": (0, 0xFFFF),
    "h": (-0x8000, 0x7FFF),
    "I": (0, 0xFFFF_FFFF),
    "i": (-0x8000_0000, 0x7FFF_FFFF),
}


def wire_range(code: str) -> tuple[int, int] | None:
    """Smallest and largest integer a struct code can carry; None for byte strings."""
    return _INT_RANGES.get(code)


def scaled(value: int, divisor: int) -> str:
    """`value / divisor` in exact decimal (divisor a power of ten): 1200, 1000 -> '1.2'."""
    whole, frac = divmod(abs(value), divisor)
    digits = len(str(divisor)) - 1
    text = f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".") if frac else str(whole)
    return f"-{text}" if value < 0 else text


def code_text(field: str, value: int) -> str | None:
    """`value` named from the field's code table, or None if the field is not a code."""
    table = CODE_FIELDS.get(field)
    if table is None:
        return None
    if issubclass(table, enum.IntFlag):
        if value == 0:
            return "none"
        known = [m.name for m in table if m.value & value and m.name]
        rest = value & ~sum(m.value for m in table)
        if rest:
            known.append(f"unknown 0x{rest:x}")
        return "|".join(known)
    try:
        return table(value).name
    except ValueError:
        return f"unknown {table.__name__} {value}"


def field_text(message: Message, name: str, wire: Wire) -> str:
    """One field as a person reads it: `1200 µm (1.2 mm)`, `3 (RUNNING)`, `'PEN-0042'`."""
    value: Any = getattr(message, name)
    if isinstance(value, bytes):
        if name == "raw_points":
            pts = message.points()  # type: ignore[attr-defined]
            return ", ".join(f"{c}->{t} µm" for c, t in pts) or "(no points)"
        if wire.unit == "ASCII":
            return repr(value.rstrip(b"\0").decode("ascii", "replace"))
        return value.hex()
    named = code_text(name, value)
    if named is not None:
        if name in ("faults", "flags", "capabilities"):
            digits = 2 * struct.calcsize("<" + wire.code)  # as wide as the field: u8 0x0f
            return f"0x{value:0{digits}x} ({named})"
        return f"{value} ({named})"
    if wire.unit in PHYSICAL:
        div, unit = PHYSICAL[wire.unit]
        raw = f"{value} x {wire.unit}" if wire.unit[0].isdigit() else f"{value} {wire.unit}"
        return f"{scaled(value, div)} {unit} ({raw})"
    if name in ("schema_hash", "token"):
        return f"0x{value:08x}"
    if name == "count" and hasattr(message, "raw_points"):
        return f"{value} of {CALIBRATION_POINTS}"
    return f"{value} {wire.unit}".rstrip()


def describe(message: Message) -> list[tuple[str, str]]:
    """(field name, readable value) for every field of `message`, in wire order."""
    return [(name, field_text(message, name, wire)) for name, wire in message.WIRE]


def to_jsonable(message: Message) -> dict[str, int | str]:
    """Field values for JSON: integers as they are, byte strings as lowercase hex."""
    return {
        name: (v.hex() if isinstance(v := getattr(message, name), bytes) else int(v))
        for name, _ in message.WIRE
    }


def from_jsonable(cls: type[Message], fields: dict[str, Any]) -> Message:
    """Inverse of `to_jsonable`: a message of class `cls` from JSON field values."""
    names = [name for name, _ in cls.WIRE]
    if set(fields) != set(names):
        raise ValueError(f"{cls.__name__} fields are {names}, got {sorted(fields)}")
    values = []
    for name, wire in cls.WIRE:
        v = fields[name]
        values.append(bytes.fromhex(v) if wire.code.endswith("s") else int(v))
    return cls(*values)
