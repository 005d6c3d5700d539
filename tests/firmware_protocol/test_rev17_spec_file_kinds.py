"""Review 17 (b17c): `python -m firmware_protocol.spec --write|--check FILE` (spec_file.py:
"written back whole or not at all, and any problem with it said in one line (no traceback)").

- --write goes through a fixed temporary name beside the file (`.NAME.spec-tmp`), opened
  following links: a link left there (another user's, a stale one) gets the text written into
  its target, another file, and FILE itself is replaced by that link.
- a FILE that is no regular file is read as one: a FIFO with no writer blocks for ever, and
  /dev/zero is read until memory runs out (a MemoryError traceback)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL_MD = ROOT / "docs" / "protocol.md"


def _spec(*args: str, limit_bytes: int | None = None,
          timeout_s: float = 20.0) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "firmware_protocol.spec", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout_s,
                          preexec_fn=limit)


def _stale_copy(path: Path) -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    stale = text.replace("| `PING` | ok |", "| `PING` | STALE |", 1)
    assert stale != text
    path.write_text(stale, encoding="utf-8")


def test_write_never_writes_through_a_link_at_its_temporary_name(tmp_path):
    doc = tmp_path / "protocol.md"
    _stale_copy(doc)
    other = tmp_path / "other.txt"
    other.write_text("another file's contents\n", encoding="utf-8")
    (tmp_path / ".protocol.md.spec-tmp").symlink_to(other)
    _spec("--write", str(doc))
    assert other.read_text(encoding="utf-8") == "another file's contents\n"
    assert not doc.is_symlink()
    assert "STALE" not in doc.read_text(encoding="utf-8")


def test_check_of_a_fifo_answers_instead_of_blocking(tmp_path):
    fifo = tmp_path / "protocol.md"
    os.mkfifo(fifo)
    try:
        done = _spec("--check", str(fifo), timeout_s=3.0)
    except subprocess.TimeoutExpired:
        done = None
    assert done is not None, "--check of a FIFO still blocked after 3 s"
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr


def test_check_of_an_endless_file_is_one_line_not_a_traceback():
    done = _spec("--check", "/dev/zero", limit_bytes=1 << 30)
    assert "Traceback" not in done.stderr, done.stderr[-400:]
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr[-400:]
