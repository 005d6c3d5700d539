"""Sample messages for the tests: every type, with low, high and typical field values."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

from firmware_protocol.describe import wire_range
from firmware_protocol.frame import encode
from firmware_protocol.messages import REGISTRY, Message

T = TypeVar("T")


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


def check_each(cases: Iterable[T], check: Callable[[T], object],
               name: Callable[[T], str]) -> None:
    """`check` every case, and fail naming each case that failed, with its assertion. For
    tables of cases that take microseconds each: as one test per case, pytest-xdist's cost per
    test (about 3 ms) was most of their CPU."""
    failed = []
    for case in cases:
        try:
            check(case)
        except AssertionError as error:
            failed.append(f"{name(case)}: {error}")
    assert not failed, "\n".join(failed)  # (no assertion rewriting in a helper module)
