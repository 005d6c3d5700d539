"""Framing: message -> bytes, and a streaming decoder that resynchronises after any error.

    offset  size  field
    0       2     SYNC  0xAA 0x55
    2       1     LEN   payload length (must equal the message type's fixed size)
    3       1     SEQ   sequence number (see docs/protocol.md, "Sequencing")
    4       1     TYPE  MsgType
    5       LEN   PAYLOAD
    5+LEN   4     CRC   CRC-32 (IEEE 802.3, as zlib.crc32) over LEN..PAYLOAD, continued over
                        the one byte CRC_EXTRA of TYPE; little-endian

CRC-32 rather than CRC-16: a CRC-16 lets about 1 in 65,536 badly damaged frames through (the
fault campaign measured it: docs/reliability.md); for a setpoint near skin that is too many.

Every message has a fixed payload size, so LEN is checked against TYPE before the CRC: a frame
whose length or type was corrupted is rejected without reading past it.
"""

from __future__ import annotations

import struct
from binascii import crc32
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from firmware_protocol.messages import REGISTRY, Message

SYNC = b"\xaa\x55"
HEADER_SIZE = 5
CRC_SIZE = 4
_CRC = struct.Struct("<I")
OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_PAYLOAD = 64
MAX_FRAME = MAX_PAYLOAD + OVERHEAD

# Indexed by type byte for speed: (message class, payload size, CRC_EXTRA as bytes) or None.
_SPECS: list[tuple[type[Message], int, bytes] | None] = [None] * 256
# The stream decoder's hot-path view of the same: (class, size, CRC_EXTRA, frame length,
# the struct's bound unpack_from), so a frame costs no attribute or classmethod lookups.
_FAST: list[tuple[type[Message], int, bytes, int, Callable[..., tuple]] | None] = [None] * 256
for _t, _cls in REGISTRY.items():
    if _cls.SIZE > MAX_PAYLOAD:
        raise ValueError(f"{_cls.__name__} payload {_cls.SIZE} > MAX_PAYLOAD {MAX_PAYLOAD}")
    _SPECS[_t] = (_cls, _cls.SIZE, bytes((_cls.CRC_EXTRA,)))
    _FAST[_t] = (
        _cls, _cls.SIZE, bytes((_cls.CRC_EXTRA,)), _cls.SIZE + OVERHEAD, _cls.STRUCT.unpack_from
    )


class Frame(NamedTuple):
    """A decoded frame: its sequence number and message."""

    seq: int
    message: Message


class FrameError(ValueError):
    """A single frame given to `decode_frame` is not valid; the message says why."""


def frame_crc(body: bytes | bytearray | memoryview, crc_extra: int) -> int:
    """CRC of LEN..PAYLOAD followed by the CRC_EXTRA byte."""
    return crc32(bytes((crc_extra,)), crc32(body))


def encode(message: Message, seq: int) -> bytes:
    """The complete frame for `message` with sequence number `seq` (0..255)."""
    payload = message.pack()
    body = bytes((len(payload), seq & 0xFF, message.TYPE)) + payload
    crc = frame_crc(body, message.CRC_EXTRA)
    return SYNC + body + _CRC.pack(crc)


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame, raising FrameError with the reason if it is not valid."""
    if len(data) < OVERHEAD:
        raise FrameError(f"frame too short: {len(data)} bytes, a frame has at least {OVERHEAD}")
    if data[:2] != SYNC:
        raise FrameError(f"no sync marker: starts {data[:2].hex()}, expected {SYNC.hex()}")
    length, seq, mtype = data[2], data[3], data[4]
    spec = _SPECS[mtype]
    if spec is None:
        raise FrameError(f"unknown message type 0x{mtype:02x}")
    cls, size, extra = spec
    if length != size:
        raise FrameError(f"{cls.__name__} has a {size}-byte payload, LEN says {length}")
    if len(data) != OVERHEAD + size:
        raise FrameError(f"{cls.__name__} frame is {OVERHEAD + size} bytes, got {len(data)}")
    want = crc32(extra, crc32(data[2 : HEADER_SIZE + size]))
    (got,) = _CRC.unpack_from(data, HEADER_SIZE + size)
    if want != got:
        raise FrameError(f"bad CRC: frame says 0x{got:08x}, computed 0x{want:08x}")
    return Frame(seq, cls.unpack_from(data, HEADER_SIZE))


@dataclass
class DecoderStats:
    """What the stream decoder accepted and dropped, for link-quality figures."""

    frames: int = 0
    garbage_bytes: int = 0  # every byte not part of a valid frame
    bad_crc: int = 0
    bad_length: int = 0
    unknown_type: int = 0

    @property
    def dropped_frames(self) -> int:
        return self.bad_crc + self.bad_length + self.unknown_type


class StreamDecoder:
    """Turns a byte stream, in chunks of any size, into frames.

    Garbage before, between or inside frames is skipped; after a bad candidate the search resumes
    one byte past its sync marker, so a real frame hidden behind a false start is still found. A
    candidate that is still incomplete does not hold back a complete valid frame after it.
    """

    __slots__ = ("_buf", "stats")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = DecoderStats()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        buf = self._buf
        buf += data
        n = len(buf)
        out: list[Frame] = []
        stats = self.stats
        specs = _FAST
        pos = 0
        valid_bytes = 0
        pending = -1  # start of the first incomplete candidate, kept for the next call
        find = buf.find
        crc_at = _CRC.unpack_from
        append = out.append
        new_frame = tuple.__new__  # Frame(seq, msg) without NamedTuple's Python-level __new__
        i = -1
        while True:
            i = find(SYNC, pos)
            if i < 0 or n - i < HEADER_SIZE:
                break
            spec = specs[buf[i + 4]]
            if spec is None:
                if pending < 0:
                    stats.unknown_type += 1
                pos = i + 1
                continue
            cls, size, extra, flen, unpack = spec
            if buf[i + 2] != size:
                if pending < 0:
                    stats.bad_length += 1
                pos = i + 1
                continue
            end = i + flen
            if end > n:
                if pending < 0:
                    pending = i
                pos = i + 1
                continue
            if crc32(extra, crc32(buf[i + 2 : end - CRC_SIZE])) != crc_at(buf, end - CRC_SIZE)[0]:
                if pending < 0:
                    stats.bad_crc += 1
                pos = i + 1
                continue
            append(new_frame(Frame, (buf[i + 3], cls(*unpack(buf, i + HEADER_SIZE)))))
            valid_bytes += flen
            pending = -1  # a complete frame after a false start: the false start was garbage
            pos = end
        if pending >= 0:
            keep_from = pending
        elif i >= 0:
            keep_from = i  # a sync with too few bytes after it for a header
        elif n > pos and buf[-1] == SYNC[0]:
            keep_from = n - 1  # maybe the first half of a sync
        else:
            keep_from = n
        stats.frames += len(out)
        stats.garbage_bytes += keep_from - valid_bytes
        del buf[:keep_from]
        return out

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop buffered bytes (after a reconnect)."""
        self._buf.clear()
