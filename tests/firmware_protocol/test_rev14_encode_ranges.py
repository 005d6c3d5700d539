"""Review 14 (proto 5): `encode` wrapped SEQ and cut byte strings without a word.

What was wrong: `firmware_protocol.encode(message, seq)` is documented for seq 0..255
(docs/protocol.md section 1: SEQ is one byte; section 4: SEQ 0 is the pen's own and a host
command with SEQ 0 is ignored), yet it masked seq with 0xFF: 256 went out as SEQ 0 (a command
the pen ignores, no reply), -1 as 255. A fixed-size byte string longer than its size
(`CalibrationWrite.raw_points`, 32 bytes) was cut by struct. Now both are a ValueError naming
the field, the value and the range; a shorter byte string is still NUL-padded (the catalogue's
rule for a serial number).
"""

from __future__ import annotations

import pytest

from firmware_protocol import decode_frame, encode
from firmware_protocol import messages as m


@pytest.mark.parametrize("seq", [256, -1, 511, 1.0, True, None])
def test_a_seq_outside_one_byte_is_refused_not_wrapped(seq):
    with pytest.raises(ValueError, match=r"seq=.*0\.\.255"):
        encode(m.Ping(1), seq)


@pytest.mark.parametrize("seq", [0, 1, 255])
def test_every_seq_of_one_byte_goes_out_as_given(seq):
    assert decode_frame(encode(m.Ping(1), seq)).seq == seq


@pytest.mark.parametrize("size", [33, 40])
def test_raw_points_longer_than_their_size_are_refused_not_cut(size):
    with pytest.raises(ValueError, match=rf"raw_points is {size} bytes.*0\.\.32"):
        encode(m.CalibrationWrite(1, 0, b"\x01" * size), 5)


def test_a_byte_string_of_its_size_or_shorter_still_goes_out():
    full = decode_frame(encode(m.CalibrationWrite(1, 0, b"\x01" * 32), 5)).message
    assert full.raw_points == b"\x01" * 32
    short = decode_frame(encode(m.CalibrationWrite(1, 0, b"\x01" * 4), 5)).message
    assert short.raw_points == b"\x01" * 4 + bytes(28)  # NUL padded, as before
