"""The codec's fast paths give the bytes and frames of the general ones.

`encode` packs a catalogue message's header and fields with one struct, `Message.pack` reads
the fields with one getter, and `StreamDecoder.feed` takes one whole frame without buffering.
Each is checked here against a reference built from the layout alone (struct and zlib.crc32),
or against the general decoder path, for any field values and any stream.
"""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import StreamDecoder, encode
from firmware_protocol.describe import wire_range
from firmware_protocol.messages import REGISTRY, Message


def _field(code: str) -> st.SearchStrategy:
    r = wire_range(code)
    if r is None:
        n = struct.calcsize(code)
        return st.binary(min_size=n, max_size=n)
    return st.integers(*r)


@st.composite
def _message(draw) -> Message:
    cls = REGISTRY[draw(st.sampled_from(sorted(REGISTRY)))]
    return cls(*[draw(_field(w.code)) for _, w in cls.WIRE])


def _reference_frame(msg: Message, seq: int) -> bytes:
    """The frame from the layout alone: docs/protocol.md, "Framing"."""
    values = [getattr(msg, name) for name, _ in msg.WIRE]
    payload = struct.pack("<" + "".join(w.code for _, w in msg.WIRE), *values)
    body = bytes((len(payload), seq, int(msg.TYPE))) + payload
    crc = zlib.crc32(bytes((msg.CRC_EXTRA,)), zlib.crc32(body))
    return b"\xaa\x55" + body + struct.pack("<I", crc)


@settings(max_examples=300, deadline=None)
@given(msg=_message(), seq=st.integers(0, 255))
def test_encode_and_pack_match_the_layout(msg: Message, seq: int) -> None:
    frame = encode(msg, seq)
    assert frame == _reference_frame(msg, seq)
    assert msg.pack() == frame[5:-4]


@settings(max_examples=200, deadline=None)
@given(
    frames=st.lists(st.tuples(_message(), st.integers(0, 255),
                              st.sampled_from(["whole", "bad_crc", "bad_len", "short"])),
                    max_size=12),
    junk=st.binary(max_size=6),
)
def test_feeding_whole_frames_decides_as_one_stream(frames: list, junk: bytes) -> None:
    """Each write fed on its own (the fast path when it is one valid frame) gives the frames
    and counters of the whole stream fed at once (the general path)."""
    writes = []
    for msg, seq, kind in frames:
        frame = bytearray(encode(msg, seq))
        if kind == "bad_crc":
            frame[-1] ^= 0x01
        elif kind == "bad_len":
            frame[2] ^= 0x40
        elif kind == "short":
            frame = frame[:-1]
        writes.append(bytes(frame))
    writes.insert(len(writes) // 2, junk)
    one_by_one, whole = StreamDecoder(), StreamDecoder()
    got = [f for w in writes if w for f in one_by_one.feed(w)] + one_by_one.expire()
    want = whole.feed(bytearray(b"".join(writes))) + whole.expire()
    assert got == want
    assert one_by_one.stats == whole.stats
