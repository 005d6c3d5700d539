"""The stream decoder decides exactly as a whole-buffer decode would, however the input is split.

Issue 11 item 5: a valid frame nested in another frame's payload used to decode instead of the
outer frame when the outer one arrived in two reads. The decoder now holds a candidate until its
CRC can be checked; these tests state the promise for any bytes and any split.
"""

from __future__ import annotations

import functools
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.frame import SYNC, DecoderStats, Frame, StreamDecoder, decode_frame, encode
from firmware_protocol.messages import (
    REGISTRY,
    CalibrationWrite,
    EStop,
    NeedleStart,
    Ping,
    SetSetpoints,
)

SPLITS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks(stream: bytes, cuts: list[int]) -> list[bytes]:
    """`stream` cut at each of `cuts` (taken modulo its length + 1, in any order)."""
    bounds = [0, *sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]
    return [stream[a:b] for a, b in pairwise(bounds)]


def decode_in_parts(stream: bytes, cuts: list[int]) -> tuple[list[Frame], DecoderStats, int]:
    """Frames, counters and bytes still held after feeding `stream` cut at `cuts`."""
    d = StreamDecoder()
    out = [f for part in chunks(stream, cuts) for f in d.feed(part)]
    return out, d.stats, d.buffered


def decode_whole(stream: bytes) -> tuple[list[Frame], DecoderStats, int]:
    return decode_in_parts(stream, [])


def nested_calibration_write() -> tuple[bytes, bytes]:
    """The issue's repro: a CALIBRATION_WRITE whose payload carries a whole NEEDLE_START frame."""
    inner = encode(NeedleStart(), 6)
    outer = CalibrationWrite(8, 1_767_225_600, inner.rjust(32, b"\x01"))
    return encode(outer, 20), inner


# ------------------------------------------------------------------------- the repro


def test_repro_nested_needle_start_never_replaces_the_outer_frame() -> None:
    frame, inner = nested_calibration_write()
    assert inner in frame and len(frame) == 46
    want = [decode_frame(frame)]
    assert decode_whole(frame)[0] == want
    for cut in range(len(frame) + 1):  # the issue saw NEEDLE_START for every cut in 19..45
        got, stats, held = decode_in_parts(frame, [cut])
        assert got == want, f"split at {cut}: {got}"
        assert (stats.frames, stats.garbage_bytes, held) == (1, 0, 0), cut


def test_nested_frame_is_found_when_the_outer_frame_is_damaged() -> None:
    # The same for every split: the outer frame fails its CRC, so its bytes are searched again.
    frame, inner = nested_calibration_write()
    bad = frame[:-1] + bytes([frame[-1] ^ 0x01])
    for cut in range(len(bad) + 1):
        got, stats, _ = decode_in_parts(bad, [cut])
        assert got == [decode_frame(inner)], cut
        assert (stats.bad_crc, stats.frames) == (1, 1), cut


# ------------------------------------------------------------------------- the property

_TYPES = sorted(REGISTRY)
# The strategies below that do not depend on the example are built once here, not at every
# draw (building them was much of these tests' CPU); what they draw is unchanged.
_A_TYPE = st.sampled_from(_TYPES)
_BYTE = st.integers(0, 255)
_PAYLOAD = {t: st.binary(min_size=REGISTRY[t].SIZE, max_size=REGISTRY[t].SIZE) for t in _TYPES}
_HOW = st.sampled_from(["truncate", "flip", "insert", "delete"])


@st.composite
def valid_frames(draw: st.DrawFn, max_size: int = 64) -> bytes:
    type_ = draw(_A_TYPE)
    payload = draw(_PAYLOAD[type_])
    return encode(REGISTRY[type_].unpack_from(payload), draw(_BYTE))


@functools.cache
def _outers(size: int) -> st.SearchStrategy[int] | None:
    """The types whose payload can carry a frame of `size` bytes (None: no type can)."""
    fits = [t for t in _TYPES if size <= REGISTRY[t].SIZE]
    return st.sampled_from(fits) if fits else None


@st.composite
def nested_frames(draw: st.DrawFn) -> bytes:
    """A frame whose payload carries another whole valid frame at any offset that fits."""
    inner = draw(valid_frames())
    outers = _outers(len(inner))
    if outers is None:
        return inner
    cls = REGISTRY[draw(outers)]
    at = draw(st.integers(0, cls.SIZE - len(inner)))
    filler = draw(st.binary(min_size=cls.SIZE - len(inner), max_size=cls.SIZE - len(inner)))
    payload = filler[:at] + inner + filler[at:]
    return encode(cls.unpack_from(payload), draw(_BYTE))


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid or nested frame, truncated, bit-flipped, or with a byte inserted or removed."""
    frame = bytearray(draw(_VALID_OR_NESTED))
    how = draw(_HOW)
    at = draw(st.integers(0, len(frame) - 1))
    if how == "truncate":
        return bytes(frame[:at])
    if how == "flip":
        frame[at] ^= 1 << draw(st.integers(0, 7))
    elif how == "insert":
        frame.insert(at, draw(_BYTE))
    else:
        del frame[at]
    return bytes(frame)


_VALID_OR_NESTED = st.one_of(valid_frames(), nested_frames())


garbage = st.one_of(
    st.binary(max_size=24),
    st.lists(st.sampled_from([b"\xaa", b"\x55", SYNC, b"\x00", b"\x04\x00\x02"]), max_size=12)
    .map(b"".join),
)
streams = st.lists(
    st.one_of(valid_frames(), nested_frames(), damaged(), garbage), max_size=12
).map(b"".join)


@SPLITS
@given(stream=streams, cuts=st.lists(st.integers(0, 2000), max_size=12))
def test_any_split_decodes_as_the_whole(stream: bytes, cuts: list[int]) -> None:
    assert decode_in_parts(stream, cuts) == decode_whole(stream)


@SPLITS
@given(stream=streams)
def test_byte_at_a_time_decodes_as_the_whole(stream: bytes) -> None:
    assert decode_in_parts(stream, list(range(len(stream)))) == decode_whole(stream)


@SPLITS
@given(stream=streams, cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_every_byte_is_either_in_a_frame_garbage_or_held(stream: bytes, cuts: list[int]) -> None:
    frames, stats, held = decode_in_parts(stream, cuts)
    framed = sum(REGISTRY[f.message.TYPE].SIZE + 9 for f in frames)
    assert framed + stats.garbage_bytes + held == len(stream)
    assert stats.frames == len(frames)


@SPLITS
@given(stream=streams, cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_expire_resolves_everything_held_the_same_for_any_split(
    stream: bytes, cuts: list[int]
) -> None:
    # A quiet line (the inter-byte timeout) is an input like a byte: after it, nothing is held,
    # and the result still does not depend on how the bytes came.
    def run(parts: list[int]) -> tuple[list[Frame], DecoderStats]:
        d = StreamDecoder()
        out = [f for part in chunks(stream, parts) for f in d.feed(part)]
        out += d.expire()
        assert d.buffered == 0
        return out, d.stats

    frames, stats = run(cuts)
    assert (frames, stats) == run([])
    framed = sum(REGISTRY[f.message.TYPE].SIZE + 9 for f in frames)
    assert framed + stats.garbage_bytes == len(stream)


# ------------------------------------------------------------------------- expire


def test_expire_releases_a_frame_held_behind_a_truncated_one() -> None:
    # A frame that lost its tail holds back the ESTOP after it until its claimed length is in;
    # when the line goes quiet, expire() gives it up and the ESTOP is delivered.
    truncated = encode(SetSetpoints(1200, 10000, 400, 125_000), 3)[:8]
    stop = encode(EStop(), 4)
    d = StreamDecoder()
    assert d.feed(truncated + stop) == []  # 17 bytes: the SET_SETPOINTS candidate claims 19
    assert d.expire() == [decode_frame(stop)]
    assert (d.stats.truncated, d.stats.frames, d.stats.garbage_bytes) == (1, 1, len(truncated))
    assert d.buffered == 0


def test_expire_on_an_empty_or_clean_decoder_is_a_no_op() -> None:
    d = StreamDecoder()
    assert d.expire() == []
    d.feed(encode(Ping(token=1), 1))
    assert d.expire() == [] and d.stats == DecoderStats(frames=1)
