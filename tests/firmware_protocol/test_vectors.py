"""Golden vectors: the committed file is the reference; every vector is checked both ways."""

from __future__ import annotations

from firmware_protocol.codes import MsgType
from firmware_protocol.describe import to_jsonable
from firmware_protocol.frame import decode_frame, encode
from firmware_protocol.vectors import (
    build_vectors,
    load_vectors,
    render_json,
    vector_message,
    vectors_path,
)

from .helpers import check_each

VECTORS = load_vectors()


def _name(vector: dict) -> str:
    return vector["name"]


def test_every_vector_encodes_to_its_hex() -> None:
    check_each(VECTORS, _encodes_to_its_hex, _name)


def _encodes_to_its_hex(vector: dict) -> None:
    assert encode(vector_message(vector), vector["seq"]).hex() == vector["hex"]


def test_every_vector_hex_decodes_to_its_fields() -> None:
    check_each(VECTORS, _decodes_to_its_fields, _name)


def _decodes_to_its_fields(vector: dict) -> None:
    frame = decode_frame(bytes.fromhex(vector["hex"]))
    assert frame.seq == vector["seq"]
    assert MsgType(frame.message.TYPE).name == vector["type"]
    assert to_jsonable(frame.message) == vector["fields"]


def test_vectors_cover_every_message_type_and_edges() -> None:
    assert {v["type"] for v in VECTORS} == {t.name for t in MsgType}
    names = {v["name"] for v in VECTORS}
    assert len(names) == len(VECTORS), "vector names must be unique"
    assert any(v["fields"].get("depth_um", 0) < 0 for v in VECTORS), "a negative depth"
    assert any(v["fields"].get("period_us") == 2**32 - 1 for v in VECTORS), "max values"
    assert any(v["type"] == "CALIBRATION_TABLE" and v["fields"]["count"] > 0 for v in VECTORS)
    assert {v["seq"] for v in VECTORS} >= {0, 1, 255}


def test_vectors_have_exactly_the_documented_keys() -> None:
    for v in VECTORS:
        assert set(v) == {"name", "seq", "type", "fields", "hex"}, v["name"]


def test_generator_reproduces_the_committed_file() -> None:
    # If this fails after a deliberate catalogue change: python -m firmware_protocol.vectors
    # --write, and review the diff; the committed file is what firmware teams test against.
    assert render_json(build_vectors()) == vectors_path().read_text(encoding="utf-8")
