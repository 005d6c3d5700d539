"""docs/protocol.md carries exactly today's rendering of the catalogue between its markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_protocol import spec
from firmware_protocol.codes import Fault, MsgType, NackReason
from firmware_protocol.messages import REGISTRY, SCHEMA_HASH

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
FIX = "python -m firmware_protocol.spec --write docs/protocol.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", list(spec.SECTIONS))
def test_generated_section_matches_code(doc: str, name: str) -> None:
    assert spec.extract(doc, name) == spec.SECTIONS[name](), f"{DOC} is stale: run {FIX}"


def test_refresh_is_a_fixed_point(doc: str) -> None:
    assert spec.refresh(doc) == doc, f"run {FIX}"


def test_rendering_names_every_message_code_and_field() -> None:
    messages = spec.render_messages()
    for cls in REGISTRY.values():
        assert f"0x{int(cls.TYPE):02X} {MsgType(cls.TYPE).name}" in messages
        for name, _ in cls.WIRE:
            assert f"`{name}`" in messages
    codes = spec.render_codes()
    for m in [*NackReason, *Fault]:
        assert f"`{m.name}`" in codes
    assert f"0x{SCHEMA_HASH:08X}" in spec.render_identity()


def test_refresh_rejects_a_file_without_markers() -> None:
    with pytest.raises(ValueError, match="identity"):
        spec.refresh("no markers here")


def test_check_reports_stale_file(tmp_path: Path, doc: str) -> None:
    stale = tmp_path / "protocol.md"
    stale.write_text(doc.replace("| 0x01 | IDENTIFY_REQUEST |", "| 0x01 | OLD |"), "utf-8")
    assert spec.main(["--check", str(stale)]) == 1
    assert spec.main(["--write", str(stale)]) == 0
    assert stale.read_text("utf-8") == doc
