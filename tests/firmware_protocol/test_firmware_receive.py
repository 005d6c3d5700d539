"""The firmware's receive path against arbitrary and damaged bytes (issue 11, adversarial suite).

Promises (docs/protocol.md sections 1, 11): no input makes the firmware raise; a command runs
only if a valid frame (right LEN, TYPE and CRC) carried it; so a NEEDLE_START in particular
never runs from damaged bytes. Which frames are valid is decided here independently of the
decoder under test: every substring of the input is checked with `decode_frame`.
"""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType
from firmware_protocol.frame import MAX_FRAME, OVERHEAD, FrameError, decode_frame, encode
from firmware_protocol.messages import HOST_TO_PEN, REGISTRY
from firmware_protocol.timing import INTER_BYTE_TIMEOUT_MS
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SETPOINTS = m.SetSetpoints(depth_um=1000, speed_centihz=10000, duty_permille=500,
                           period_us=100_000)


def booted() -> PenFirmware:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    assert fw.state is S.IDLE
    fw.take_frames()
    return fw


def armed_with_lease() -> PenFirmware:
    """ARMED, setpoints set, a 2 s lease: one valid NEEDLE_START away from running."""
    fw = booted()
    for seq, msg in enumerate((SETPOINTS, m.LeaseRenew(2000), m.Arm()), start=200):
        fw.receive_now(encode(msg, seq))
    assert fw.state is S.ARMED
    fw.take_frames()
    return fw


def valid_frames_in(data: bytes) -> Counter[MsgType]:
    """Host commands carried by some valid frame anywhere in `data`, by brute force."""
    found: Counter[MsgType] = Counter()
    for i in range(len(data)):
        for j in range(i + OVERHEAD, min(len(data), i + MAX_FRAME) + 1):
            try:
                msg = decode_frame(data[i:j]).message
            except FrameError:
                continue
            if msg.TYPE in HOST_TO_PEN:
                found[MsgType(msg.TYPE)] += 1
    return found


def feed(fw: PenFirmware, parts: list[bytes]) -> None:
    """Each part at its own tick, then enough quiet ticks for the inter-byte timeout."""
    for part in parts:
        fw.receive_now(part)
        fw.step()
    for _ in range(INTER_BYTE_TIMEOUT_MS + 1):
        fw.step()
    assert fw.decoder.buffered == 0  # the quiet line resolved every partial frame


def outputs_are_valid_pen_frames(fw: PenFirmware) -> None:
    for frame in fw.take_frames():
        assert decode_frame(frame).message.TYPE not in HOST_TO_PEN


@st.composite
def command_frames(draw: st.DrawFn) -> bytes:
    mtype = draw(st.sampled_from(sorted(HOST_TO_PEN)))
    cls = REGISTRY[mtype]
    payload = draw(st.binary(min_size=cls.SIZE, max_size=cls.SIZE))
    return encode(cls.unpack_from(payload), draw(st.integers(1, 255)))


@st.composite
def mutated(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> bytes:
    frame = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(frame) - 1)))
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not frame:
            break
        if how == "flip":
            frame[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set":
            frame[at] = draw(st.integers(0, 255))
        elif how == "insert":
            frame.insert(at, draw(st.integers(0, 255)))
        elif how == "delete":
            del frame[at]
        else:
            del frame[at:]
    return bytes(frame)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in pairwise(bounds)]


inputs = st.lists(
    st.one_of(st.binary(max_size=40), mutated(command_frames()), command_frames()), max_size=6
).map(b"".join)


@PROPS
@given(data=inputs, cuts=st.lists(st.integers(0, 500), max_size=5))
def test_no_input_makes_the_firmware_raise_or_run_an_invalid_command(
    data: bytes, cuts: list[int]
) -> None:
    fw = booted()
    before = fw.executed.copy()
    feed(fw, split(data, cuts))
    ran = fw.executed - before
    carried = valid_frames_in(data)
    for mtype, n in ran.items():
        assert n <= carried[mtype], f"{mtype.name} ran {n}x, valid frames carried {carried}"
    outputs_are_valid_pen_frames(fw)


@PROPS
@given(
    data=st.lists(mutated(st.just(encode(m.NeedleStart(), 9))), min_size=1, max_size=4)
    .map(b"".join),
    cuts=st.lists(st.integers(0, 200), max_size=4),
)
def test_damaged_needle_start_never_starts_the_needle(data: bytes, cuts: list[int]) -> None:
    fw = armed_with_lease()
    feed(fw, split(data, cuts))
    if valid_frames_in(data)[MsgType.NEEDLE_START] == 0:
        assert fw.executed[MsgType.NEEDLE_START] == 0
        assert fw.state is not S.RUNNING


def test_needle_start_nested_in_a_calibration_write_never_runs_for_any_split() -> None:
    # Issue 11 item 5 on the pen side: the outer CALIBRATION_WRITE is the command (NACKed in
    # ARMED); the NEEDLE_START inside its payload must not run, however the bytes arrive.
    inner = encode(m.NeedleStart(), 6)
    outer = encode(m.CalibrationWrite(8, 1_767_225_600, inner.rjust(32, b"\x01")), 20)
    for cut in range(len(outer) + 1):
        fw = armed_with_lease()
        feed(fw, split(outer, [cut]))
        assert fw.executed[MsgType.NEEDLE_START] == 0, cut
        assert fw.state is S.ARMED, cut
        replies = [decode_frame(f).message for f in fw.take_frames()]
        assert m.Nack(int(MsgType.CALIBRATION_WRITE), 1, 0) in replies, cut


def test_a_command_behind_a_truncated_frame_runs_after_the_inter_byte_timeout() -> None:
    fw = armed_with_lease()
    truncated = encode(SETPOINTS, 30)[:8]  # claims 19 bytes, 8 arrive
    fw.receive_now(truncated + encode(m.EStop(), 31))  # 17 bytes: still inside the claim
    assert fw.state is S.ARMED  # held: the SET_SETPOINTS candidate may yet complete
    for _ in range(INTER_BYTE_TIMEOUT_MS):
        fw.step()
    assert fw.state is S.ESTOP
    assert fw.decoder.stats.truncated == 1
