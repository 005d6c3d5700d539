"""Framing: decode_frame's errors, and the stream decoder's properties under noise and splits."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.frame import (
    MAX_FRAME,
    OVERHEAD,
    SYNC,
    FrameError,
    StreamDecoder,
    decode_frame,
    encode,
)
from firmware_protocol.messages import Ack, EStop, LeaseRenew, Ping, SetSetpoints, Telemetry

from .helpers import all_frames, all_samples

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PING = encode(Ping(token=0x01020304), 7)


def _frames_of(stream: bytes, chunks: list[int] | None = None) -> tuple[list, StreamDecoder]:
    d = StreamDecoder()
    if chunks is None:
        return d.feed(stream), d
    out, pos = [], 0
    for size in chunks:
        out += d.feed(stream[pos : pos + size])
        pos += size
    out += d.feed(stream[pos:])
    return out, d


# ------------------------------------------------------------------------- decode_frame errors


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"too short: 0 bytes"),
        (PING[:6], rf"too short: 6 bytes, a frame has at least {OVERHEAD}"),
        (b"\x55\xaa" + PING[2:], r"no sync marker: starts 55aa, expected aa55"),
        (PING[:4] + b"\x30" + PING[5:], r"unknown message type 0x30"),
        (PING[:2] + b"\x05" + PING[3:], r"Ping has a 4-byte payload, LEN says 5"),
        (PING + b"\x00", rf"Ping frame is {len(PING)} bytes, got {len(PING) + 1}"),
        (PING[:-1] + bytes([PING[-1] ^ 1]), r"bad CRC: frame says 0x[0-9a-f]{8}, computed 0x"),
    ],
    ids=["empty", "short", "sync", "type", "len", "long", "crc"],
)
def test_decode_frame_errors_say_why(data: bytes, match: str) -> None:
    with pytest.raises(FrameError, match=match):
        decode_frame(data)


def test_frame_error_is_a_value_error() -> None:
    assert issubclass(FrameError, ValueError)


# ------------------------------------------------------------------------- single bit flips


def assert_no_other_message(original: bytes, corrupted: bytes) -> None:
    """A corrupted frame must not decode, alone or in a stream, as any different message."""
    want = decode_frame(original)
    try:
        got = decode_frame(corrupted)
    except FrameError:
        pass
    else:  # only possible if the corruption left the frame identical, which a flip cannot
        raise AssertionError(f"{corrupted.hex()} accepted as {got}, original {want}")
    for f in StreamDecoder().feed(corrupted):
        assert f == want, f"bit flip accepted as a different message: {f}"


def test_every_single_bit_flip_of_every_message_type_is_rejected() -> None:
    # Exhaustive and deterministic: every type at low/mid/high values, every bit position.
    for frame in all_frames():
        for bit in range(len(frame) * 8):
            bad = bytearray(frame)
            bad[bit // 8] ^= 1 << (bit % 8)
            assert_no_other_message(frame, bytes(bad))


@FAST
@given(
    idx=st.integers(0, len(all_samples()) - 1),
    seq=st.integers(0, 255),
    bit=st.integers(0, 8 * MAX_FRAME - 1),
    data=st.data(),
)
def test_random_bit_flip_never_yields_a_different_message(
    idx: int, seq: int, bit: int, data: st.DataObject
) -> None:
    msg, _ = all_samples()[idx]
    # Random field values on top of the sample's shape.
    payload = data.draw(st.binary(min_size=msg.SIZE, max_size=msg.SIZE))
    frame = bytearray(encode(type(msg).unpack_from(payload), seq))
    bit %= len(frame) * 8
    bad = bytearray(frame)
    bad[bit // 8] ^= 1 << (bit % 8)
    assert_no_other_message(bytes(frame), bytes(bad))


# ------------------------------------------------------------------------- stream decoder

messages_st = st.one_of(
    st.builds(Ping, st.integers(0, 2**32 - 1)),
    st.builds(LeaseRenew, st.integers(0, 2**16 - 1)),
    st.builds(Ack, st.integers(0, 255)),
    st.builds(EStop),
    st.builds(
        SetSetpoints,
        st.integers(-(2**15), 2**15 - 1),
        st.integers(0, 2**16 - 1),
        st.integers(0, 2**16 - 1),
        st.integers(0, 2**32 - 1),
    ),
    st.builds(
        Telemetry,
        *[st.integers(0, 255)] * 3,
        st.integers(0, 2**16 - 1),
        st.integers(0, 255),
        *[st.integers(-(2**15), 2**15 - 1)] * 2,
        *[st.integers(0, 2**16 - 1)] * 2,
        st.integers(-(2**15), 2**15 - 1),
        *[st.integers(0, 2**32 - 1)] * 2,
        st.integers(0, 2**16 - 1),
    ),
)
frames_st = st.lists(st.tuples(messages_st, st.integers(0, 255)), min_size=1, max_size=8)


@FAST
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_any_byte_stream_never_raises(chunks: list[bytes]) -> None:
    d = StreamDecoder()
    for c in chunks:
        d.feed(c)
    assert d.buffered <= 71  # never holds more than one frame's worth


@FAST
@given(st.lists(st.sampled_from([b"\xaa", b"\x55", b"\xaa\x55", b"\x00", b"\x20\x00\x45"]),
                max_size=60))
def test_sync_heavy_noise_never_raises(parts: list[bytes]) -> None:
    # Plain random bytes rarely contain AA 55; this stream is mostly false starts.
    d = StreamDecoder()
    for p in parts:
        d.feed(p)
    d.feed(b"".join(parts))


def test_every_split_position_decodes_the_same() -> None:
    # Deterministic: one stream of every message type, split in two at every position.
    stream = b"".join(all_frames())
    whole, _ = _frames_of(stream)
    assert len(whole) == len(all_frames())
    for cut in range(len(stream) + 1):
        parts, _ = _frames_of(stream, [cut])
        assert parts == whole, cut


@FAST
@given(frames=frames_st, cuts=st.lists(st.integers(0, 40), max_size=20))
def test_split_anywhere_decodes_the_same(frames: list, cuts: list[int]) -> None:
    stream = b"".join(encode(m, s) for m, s in frames)
    whole, dw = _frames_of(stream)
    split, ds = _frames_of(stream, cuts)
    assert [f.message for f in whole] == [m for m, _ in frames]
    assert split == whole
    assert ds.stats == dw.stats


def test_byte_by_byte_feed_decodes_every_type() -> None:
    stream = b"".join(all_frames())
    got, d = _frames_of(stream, [1] * len(stream))
    assert [f.message for f in got] == [m for m, _ in all_samples()]
    assert d.stats.garbage_bytes == 0 and d.stats.dropped_frames == 0


garbage_st = st.binary(max_size=40).filter(lambda g: SYNC not in g)


@FAST
@given(frames=frames_st, data=st.data())
def test_garbage_between_frames_costs_only_the_garbage(frames: list, data: st.DataObject) -> None:
    garbage = [data.draw(garbage_st) for _ in range(len(frames) + 1)]
    encoded = [encode(m, s) for m, s in frames]
    stream = garbage[0] + b"".join(f + g for f, g in zip(encoded, garbage[1:], strict=True))
    # A garbage byte AA just before a frame's AA 55, or a frame ending in AA before garbage
    # starting 55, still leaves SYNC out of every garbage run; the sum must be exact.
    got, d = _frames_of(stream)
    assert [f.message for f in got] == [m for m, _ in frames]
    assert [f.seq for f in got] == [s for _, s in frames]
    assert d.stats.frames == len(frames)
    # A trailing AA may be held back as half a sync; it is garbage not yet counted.
    held = d.buffered
    assert held <= 1
    assert d.stats.garbage_bytes + held == sum(map(len, garbage))


def test_garbage_inside_a_frame_drops_only_that_frame() -> None:
    a, b, c = (encode(Ping(token=i), i) for i in (1, 2, 3))
    stream = a + b[:6] + b"\x00\x11" + b[6:] + c
    got, d = _frames_of(stream)
    assert [f.seq for f in got] == [1, 3]
    assert d.stats.bad_crc == 1
    assert d.stats.garbage_bytes == len(b) + 2


def test_false_start_does_not_hide_a_real_frame() -> None:
    # AA 55 then a Ping header whose "frame" would swallow the real ping that follows.
    false = SYNC + bytes([4, 0, 0x02])
    got, d = _frames_of(false + PING)
    assert [f.message for f in got] == [Ping(token=0x01020304)]
    assert d.stats.garbage_bytes == len(false)


def test_incomplete_frame_waits_for_its_end() -> None:
    d = StreamDecoder()
    assert d.feed(PING[:-1]) == []
    assert d.buffered == len(PING) - 1
    assert d.feed(PING[-1:]) == [decode_frame(PING)]
    assert d.buffered == 0


def test_stats_count_each_kind_of_drop() -> None:
    d = StreamDecoder()
    bad_crc = PING[:-1] + bytes([PING[-1] ^ 0xFF])
    bad_len = PING[:2] + b"\x09" + PING[3:]
    unknown = PING[:4] + b"\x3f" + PING[5:]
    d.feed(bad_crc + bad_len + unknown + PING)
    s = d.stats
    assert (s.bad_crc, s.bad_length, s.unknown_type, s.frames) == (1, 1, 1, 1)
    assert s.dropped_frames == 3
    assert s.garbage_bytes == 3 * len(PING)


def test_reset_drops_buffered_bytes() -> None:
    d = StreamDecoder()
    d.feed(PING[:5])
    d.reset()
    assert d.buffered == 0
    assert d.feed(PING[5:]) == []
