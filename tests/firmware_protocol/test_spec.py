"""docs/protocol.md carries exactly today's rendering of the catalogue between its markers."""

from __future__ import annotations

import json
import re
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


def test_every_vector_count_in_the_spec_is_the_files(doc: str) -> None:
    """Review 7c R07: section 13 said 104 scenario vectors when the file held 116. Each
    "`firmware_protocol/<file>.json`: N **... vectors**" the spec states is the file's count."""
    stated = re.findall(r"`firmware_protocol/(\w+\.json)`: (\d+) \*\*[^*]*vectors\*\*", doc)
    assert {name for name, _ in stated} >= {"vectors.json", "scenarios.json",
                                            "decoder_vectors.json"}
    root = DOC.parents[1] / "firmware_protocol"
    for name, n in stated:
        actual = len(json.loads((root / name).read_text(encoding="utf-8")))
        assert int(n) == actual, f"protocol.md says {n} vectors in {name}, it holds {actual}"


def test_the_state_table_says_an_estop_cleared_while_booting_returns_to_booting(doc: str) -> None:
    """Review 7c R06, decided for the simulator's behaviour: the boot is never skipped. The
    table's CLEAR_FAULTS-in-ESTOP cell says so, and so does section 10."""
    row = next(line for line in doc.splitlines() if line.startswith("| `CLEAR_FAULTS` | NACK"))
    estop_cell = row.split(" | ")[6]
    assert estop_cell == "ok -> IDLE (BOOTING before the boot completes), EVENT CLEARED"
    assert "sends the pen back to **BOOTING**" in doc
