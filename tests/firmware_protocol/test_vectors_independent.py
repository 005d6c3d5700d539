"""The literal-byte golden vectors, checked without the codec (issue 13 item 8).

Everything here is computed from the published text alone, as a firmware team would: the frames
in firmware_protocol/vectors.json, and the layout strings, CRC_EXTRA values and SCHEMA_HASH in
docs/protocol.md. The frame CRC is zlib.crc32, CRC_EXTRA a CRC-16/CCITT-FALSE written out
below, the payload layouts Python's struct module driven by the layout strings. No function of
firmware_protocol is called, so a bug shared by the encoder and the decoder cannot hide.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "firmware_protocol" / "vectors.json").read_text("utf-8"))
DOC = (ROOT / "docs" / "protocol.md").read_text("utf-8")

# | 0x03 | SET_SETPOINTS | `SetSetpoints:3:depth_um/h,...` | 0x41 |
_ROW = re.compile(r"^\| 0x([0-9A-F]{2}) \| (\w+) \| `([^`]*)` \| 0x([0-9A-F]{2}) \|$", re.M)
LAYOUTS = {
    name: (int(code, 16), layout, int(extra, 16))
    for code, name, layout, extra in _ROW.findall(DOC)
}


def check_each(cases, check, name) -> None:
    """tests/firmware_protocol/helpers.py's check_each, kept here: this file imports nothing
    of the package."""
    failed = []
    for case in cases:
        try:
            check(case)
        except AssertionError as error:
            failed.append(f"{name(case)}: {error}")
    assert failed == []


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def crc_extra(layout: str) -> int:
    c = crc16_ccitt_false(layout.encode("utf-8"))
    return (c >> 8) ^ (c & 0xFF)


def payload_format(layout: str) -> str:
    """`Name:type:a/h,b/I` -> the little-endian struct format `<hI`."""
    fields = layout.split(":", 2)[2]
    return "<" + "".join(f.split("/")[1] for f in fields.split(",") if f)


def test_the_crcs_are_the_published_ones() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_the_doc_lists_a_layout_for_every_vector_type() -> None:
    assert len(LAYOUTS) >= 21
    assert {v["type"] for v in VECTORS} <= set(LAYOUTS)


def test_crc_extra_in_the_doc_is_crc16_of_each_layout_string() -> None:
    check_each(sorted(LAYOUTS), _crc_extra_is_crc16_of_the_layout_string, str)


def _crc_extra_is_crc16_of_the_layout_string(name: str) -> None:
    code, layout, extra = LAYOUTS[name]
    assert layout.split(":")[1] == str(code)
    assert crc_extra(layout) == extra


def test_schema_hash_is_crc32_of_the_layout_strings() -> None:
    version = int(re.search(r"PROTOCOL_VERSION = (\d+)", DOC).group(1))
    published = int(re.search(r"SCHEMA_HASH = 0x([0-9A-F]{8})", DOC).group(1), 16)
    layouts = [layout for _, layout, _ in sorted(LAYOUTS.values())]
    text = f"v{version};" + ";".join(layouts)
    assert zlib.crc32(text.encode("utf-8")) == published
    # ... and it is what the IDENTIFY vector carries (payload offset 1, u32 little-endian).
    frame = bytes.fromhex(next(v for v in VECTORS if v["name"] == "identify")["hex"])
    assert int.from_bytes(frame[6:10], "little") == published


def test_every_vector_frame_is_right_byte_for_byte() -> None:
    check_each(VECTORS, _frame_is_right_byte_for_byte, lambda vector: vector["name"])


def _frame_is_right_byte_for_byte(vector: dict) -> None:
    frame = bytes.fromhex(vector["hex"])
    code, layout, extra = LAYOUTS[vector["type"]]
    fmt = payload_format(layout)
    size = struct.calcsize(fmt)
    assert frame[:2] == b"\xaa\x55"
    assert (frame[2], frame[3], frame[4]) == (size, vector["seq"], code)
    assert len(frame) == 5 + size + 4
    crc = zlib.crc32(frame[2 : 5 + size] + bytes([extra]))
    assert frame[5 + size :] == crc.to_bytes(4, "little")
    values = struct.unpack(fmt, frame[5 : 5 + size])
    names = [f.split("/")[0] for f in layout.split(":", 2)[2].split(",") if f]
    want = {n: (v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, values, strict=True)}
    assert want == vector["fields"]
