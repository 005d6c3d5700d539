"""`FrameWriter.seal()` of a recording whose file is gone from disk (a tidy-up tool, a disk
unmounted) answers, as any write error does: no hash, and why it is truncated. It raised
FileNotFoundError, and the session's close failed with it (review 15a, REVASYNC R05)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpdevice.records.frames import FrameWriter


def _removed(path: Path) -> None:
    path.unlink()


def _replaced_by_a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("gone", [_removed, _replaced_by_a_directory])
def test_seal_of_a_recording_whose_file_is_gone_says_so_instead_of_raising(tmp_path, gone):
    path = tmp_path / "S1.mcap"
    writer = FrameWriter(path, {"session_id": "S1"}, start_s=0.0)
    for i in range(20):
        writer.add("/host", i * 0.01, bytes([i]))
    gone(path)

    sealed = writer.seal()

    assert sealed.file == "S1.mcap"
    assert sealed.sha256 == ""  # nothing to vouch for
    assert sealed.size_bytes == 0
    assert sealed.truncated is not None and sealed.truncated.startswith("write error:"), sealed
    assert str(path) in sealed.truncated, sealed.truncated  # names what is missing
    assert sealed.as_record()["truncated"] == sealed.truncated  # what the close record carries
