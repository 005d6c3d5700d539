"""Each simulated port's receive buffer, like an OS tty buffer, and what gives way when it is
full: the oldest whole TELEMETRY frames (telemetry is lossy: docs/protocol.md section 12).
Replies and EVENTs are kept past the limit, up to RX_KEPT_MAX: a port that far behind does not
read (a tap left open), and what comes beyond it is dropped, counted, so its memory and the
cost of each step stay bounded. Other chunks (a link fault's junk, a part of a split frame) are
dropped once no telemetry is left to give way."""

from __future__ import annotations

import itertools
from collections import Counter, deque
from typing import Protocol

from firmware_protocol.codes import MsgType
from firmware_protocol.frame import OVERHEAD, SYNC
from firmware_protocol.messages import REGISTRY


class RxBuffer(Protocol):
    """What `make_room` works on: a simulated port's buffer, or the pty bridge's outbox."""

    _rx: deque[bytes]
    _rx_bytes: int

RX_LIMIT = 1 << 16
RX_KEPT_MAX = 2 * RX_LIMIT
# Chunks looked at, oldest first, for a TELEMETRY frame to give way: replies a port never read
# pile up at its front, and scanning past all of them for every chunk made each step slower.
SCAN_MAX = 64
TYPE_AT = 4  # frame offset of TYPE (firmware_protocol/frame.py)
TELEMETRY = int(MsgType.TELEMETRY)  # the one lossy frame
_TELEMETRY_FRAME = OVERHEAD + REGISTRY[TELEMETRY].SIZE


def is_telemetry(chunk: bytes) -> bool:
    """A whole TELEMETRY frame as the pen wrote it (a part of a split one is not)."""
    return len(chunk) == _TELEMETRY_FRAME and chunk[TYPE_AT] == TELEMETRY and chunk[:2] == SYNC


def _is_kept(chunk: bytes) -> bool:
    """A whole frame that is no TELEMETRY (a reply or an EVENT): never dropped for room."""
    if len(chunk) < OVERHEAD or chunk[:2] != SYNC or chunk[TYPE_AT] == TELEMETRY:
        return False
    cls = REGISTRY.get(chunk[TYPE_AT])
    return cls is not None and len(chunk) == OVERHEAD + cls.SIZE == OVERHEAD + chunk[2]


def make_room(port: RxBuffer, chunk: bytes, stats: Counter[str]) -> bool:
    """Room in `port`'s full buffer (`_rx`, `_rx_bytes`) for `chunk`: the oldest whole TELEMETRY
    frames give way (counted in `rx_telemetry_dropped`). False if `chunk` is to be dropped
    instead: it is no reply or EVENT and no telemetry is left to give way."""
    rx = port._rx
    while port._rx_bytes + len(chunk) > RX_LIMIT:
        for i, old in enumerate(itertools.islice(rx, SCAN_MAX)):  # oldest first
            if is_telemetry(old):
                del rx[i]
                port._rx_bytes -= len(old)
                stats["rx_telemetry_dropped"] += 1
                break
        else:
            return _is_kept(chunk) and port._rx_bytes + len(chunk) <= RX_KEPT_MAX
    return True
