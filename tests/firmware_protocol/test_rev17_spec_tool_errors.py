"""Review 17: `python -m firmware_protocol.spec --write|--check FILE` says what is wrong with
FILE in one line (its name and the reason), exit 1, never a traceback, and leaves it as it was.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_protocol import spec

ROOT = Path(__file__).resolve().parents[2]
BAD_FILES = {
    "missing": (None, "No such file"),
    "no-markers": (b"no generated blocks here\n", "expected one 'identity' block, found 0"),
    "not-utf8": (b"caf\xe9 \xff\n", "not UTF-8 text (byte 0xE9 at offset 3)"),
    "directory": ("dir", "Is a directory"),
}


@pytest.mark.parametrize("option", ["--check", "--write"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_wrong_file_is_one_line_not_a_traceback(tmp_path: Path, option: str,
                                                  case: str) -> None:
    content, reason = BAD_FILES[case]
    target = tmp_path / "protocol.md"
    if content == "dir":
        target.mkdir()
    elif content is not None:
        target.write_bytes(content)
    proc = subprocess.run([sys.executable, "-m", "firmware_protocol.spec", option, str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{target}: "), proc.stderr
    assert reason in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if isinstance(content, bytes):
        assert target.read_bytes() == content  # nothing written over it
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else [target.name])


def test_a_file_with_one_block_twice_is_refused_whole(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    first = spec.begin_marker("timing")
    block = doc[doc.index(first):doc.index(spec.end_marker("timing"))]
    target = tmp_path / "protocol.md"
    target.write_text(doc + block + spec.end_marker("timing") + "\n", encoding="utf-8")
    before = target.read_bytes()
    assert spec.main(["--write", str(target)]) == 1
    assert target.read_bytes() == before


def test_write_follows_a_link_and_keeps_it(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    real = tmp_path / "real.md"
    real.write_text(doc.replace("| 0x01 | IDENTIFY_REQUEST |", "| 0x01 | OLD |"), "utf-8")
    link = tmp_path / "protocol.md"
    link.symlink_to(real)
    assert spec.main(["--write", str(link)]) == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8") == doc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["protocol.md", "real.md"]
