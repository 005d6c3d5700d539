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

import operator
import struct
from binascii import crc32
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
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


def _sized(cls: type[Message]) -> tuple[tuple[str, int], ...]:
    """(name, size) of each byte-string field of `cls`."""
    return tuple((name, struct.calcsize("<" + wire.code)) for name, wire in cls.WIRE
                 if wire.code.endswith("s"))


# encode's view, by class: LEN, SEQ, TYPE and the fields packed by one struct (the same bytes
# as the header followed by `message.pack()`), the fields' getter and their count.
_ENCODE: dict[type[Message], tuple[Callable[..., bytes], Callable[[Message], object], int,
                                   int, int, bytes]] = {}
# The byte-string fields of each class that has any, (name, size): struct would cut a longer
# value without a word (and NUL-pad a shorter one, which the catalogue allows: a serial number).
_SIZED: dict[type[Message], tuple[tuple[str, int], ...]] = {}
for _t, _cls in REGISTRY.items():
    _names = [name for name, _ in _cls.WIRE]
    _ENCODE[_cls] = (
        struct.Struct("<BBB" + _cls.STRUCT.format.removeprefix("<")).pack,
        attrgetter(*_names) if _names else (lambda _msg: ()),
        len(_names), _cls.SIZE, _t, bytes((_cls.CRC_EXTRA,)),
    )
    if _fields := _sized(_cls):
        _SIZED[_cls] = _fields


class Frame(NamedTuple):
    """A decoded frame: its sequence number and message."""

    seq: int
    message: Message


class FrameError(ValueError):
    """A single frame given to `decode_frame` is not valid; the message says why."""


def frame_crc(body: bytes | bytearray | memoryview, crc_extra: int) -> int:
    """CRC of LEN..PAYLOAD followed by the CRC_EXTRA byte."""
    return crc32(bytes((crc_extra,)), crc32(body))


def _checked_seq(seq: object) -> int:
    """`seq` as a SEQ byte, else ValueError naming it and the range: 256 must not become SEQ 0
    (a command the pen ignores) nor -1 SEQ 255."""
    if not isinstance(seq, bool):
        try:
            value = operator.index(seq)  # type: ignore[arg-type]  # an int, or int-like
        except TypeError:
            value = None
        if value is not None and 0 <= value <= 0xFF:
            return value
    raise ValueError(f"seq={seq!r} is refused: SEQ is one byte, give a whole number 0..255")


def _check_sizes(message: Message, sized: tuple[tuple[str, int], ...]) -> None:
    """ValueError naming the first byte-string field longer than its wire size."""
    for name, size in sized:
        value = getattr(message, name)
        if isinstance(value, bytes | bytearray | memoryview) and len(value) > size:
            raise ValueError(f"{type(message).__name__}.{name} is {len(value)} bytes, refused: "
                             f"give 0..{size} bytes (a longer value is never cut)")


def encode(message: Message, seq: int) -> bytes:
    """The complete frame for `message` with sequence number `seq` (0..255; anything else, or
    a byte-string field longer than its size, is a ValueError naming it)."""
    if type(seq) is not int or not 0 <= seq <= 0xFF:
        seq = _checked_seq(seq)
    cls = type(message)
    if cls in _SIZED:
        _check_sizes(message, _SIZED[cls])
    fast = _ENCODE.get(cls)
    if fast is not None:  # a catalogue message: header and fields in one pack
        pack, get, n_fields, size, mtype, extra = fast
        if n_fields == 1:
            body = pack(size, seq, mtype, get(message))
        else:
            body = pack(size, seq, mtype, *get(message))  # type: ignore[misc]
        return SYNC + body + _CRC.pack(crc32(extra, crc32(body)))
    _check_sizes(message, _sized(cls))
    payload = message.pack()
    body = bytes((len(payload), seq, message.TYPE)) + payload
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
    truncated: int = 0  # candidates given up by expire(): the line went quiet mid-frame

    @property
    def dropped_frames(self) -> int:
        return self.bad_crc + self.bad_length + self.unknown_type + self.truncated


class StreamDecoder:
    """Turns a byte stream, in chunks of any size, into frames.

    Decides exactly as a decode of the whole stream would, so the frames and counters never
    depend on how the bytes were split (docs/protocol.md, "Decoding a stream"):
    - a candidate (SYNC, known TYPE, matching LEN) is held until all its bytes are in and its
      CRC is checked; nothing after it is looked at before that, so a valid frame nested in a
      payload is never taken for a frame while its outer frame may still be valid;
    - a bad candidate is dropped and the search resumes one byte past its sync marker, so a
      real frame hidden behind a false start is still found;
    - `expire()`, called when the line has been quiet for the inter-byte timeout, gives up the
      held candidate (it will never complete) and decodes what was behind it.
    """

    __slots__ = ("_buf", "stats")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = DecoderStats()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Frames completed by `data`, in stream order."""
        if not self._buf and type(data) is bytes and len(data) >= OVERHEAD \
                and data[0] == 0xAA and data[1] == 0x55:
            # Fast path: exactly one whole valid frame and nothing held (what a read of one
            # write usually is). Anything else goes through _scan, which decides the same.
            spec = _FAST[data[4]]
            if spec is not None and spec[3] == len(data) and data[2] == spec[1] \
                    and crc32(spec[2], crc32(data[2:-CRC_SIZE])) == _CRC.unpack_from(
                        data, len(data) - CRC_SIZE)[0]:
                self.stats.frames += 1
                return [tuple.__new__(Frame, (data[3], spec[0](*spec[4](data, HEADER_SIZE))))]
        self._buf += data
        return self._scan(final=False)

    def expire(self) -> list[Frame]:
        """The line went quiet: give up every incomplete candidate; nothing stays held."""
        return self._scan(final=True) if self._buf else []

    def _scan(self, final: bool) -> list[Frame]:
        buf = self._buf
        n = len(buf)
        out: list[Frame] = []
        stats = self.stats
        specs = _FAST
        pos = 0
        valid_bytes = 0
        find = buf.find
        crc_at = _CRC.unpack_from
        append = out.append
        new_frame = tuple.__new__  # Frame(seq, msg) without NamedTuple's Python-level __new__
        keep_from = -1
        while True:
            i = find(SYNC, pos)
            if i < 0:
                break
            if n - i < HEADER_SIZE:
                if not final:
                    keep_from = i  # too few bytes after the sync for a header: wait
                    break
                pos = i + 1
                continue
            spec = specs[buf[i + 4]]
            if spec is None:
                stats.unknown_type += 1
                pos = i + 1
                continue
            cls, size, extra, flen, unpack = spec
            if buf[i + 2] != size:
                stats.bad_length += 1
                pos = i + 1
                continue
            end = i + flen
            if end > n:
                if not final:
                    keep_from = i  # hold the candidate until its CRC can be checked
                    break
                stats.truncated += 1
                pos = i + 1
                continue
            if crc32(extra, crc32(buf[i + 2 : end - CRC_SIZE])) != crc_at(buf, end - CRC_SIZE)[0]:
                stats.bad_crc += 1
                pos = i + 1
                continue
            append(new_frame(Frame, (buf[i + 3], cls(*unpack(buf, i + HEADER_SIZE)))))
            valid_bytes += flen
            pos = end
        if keep_from < 0:
            # No SYNC in buf[pos:]; a last byte AA may be the first half of one.
            keep_from = n - 1 if not final and n > pos and buf[-1] == SYNC[0] else n
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
