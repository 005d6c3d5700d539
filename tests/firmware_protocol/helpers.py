"""Sample messages for the tests: every type, with low, high and typical field values."""

from __future__ import annotations

import struct

from firmware_protocol.describe import wire_range
from firmware_protocol.frame import encode
from firmware_protocol.messages import REGISTRY, Message


def sample(cls: type[Message], pick: str = "mid") -> Message:
    """A message of `cls` whose every field is at the low, high or a middle value of its range."""
    values: list[int | bytes] = []
    for i, (_, wire) in enumerate(cls.WIRE):
        r = wire_range(wire.code)
        if r is None:  # fixed byte string
            n = struct.calcsize(wire.code)
            fill = {"lo": b"\0" * n, "hi": b"\xff" * n}.get(pick, bytes(range(i, i + n)))
            values.append(fill)
        else:
            lo, hi = r
            values.append({"lo": lo, "hi": hi}.get(pick, (lo + hi) // 2 + i))
    return cls(*values)


def all_samples() -> list[tuple[Message, int]]:
    """(message, seq) for every type at its low, middle and high values."""
    out = []
    for t in sorted(REGISTRY):
        for pick, seq in (("lo", 1), ("mid", 128), ("hi", 255)):
            out.append((sample(REGISTRY[t], pick), seq))
    return out


def all_frames() -> list[bytes]:
    return [encode(m, seq) for m, seq in all_samples()]
