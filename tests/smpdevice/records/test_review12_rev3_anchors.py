"""Review 12, third round (REV3A-1/3): the anchors file is never another file's second name,
and a station from before anchors moved beside the real file still verifies. Real SQLite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.sqlite_schema import AnchorsFileRefused
from tests.smpdevice.records.test_review12_fixw_writer import anchors_of, closed_session


def test_a_hard_linked_anchors_file_is_refused_and_its_other_name_untouched(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        closed_session(log, "C-1")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"someone else's file\n")
    anchors = anchors_of(db)
    anchors.unlink()
    os.link(victim, anchors)
    with pytest.raises(AnchorsFileRefused, match="hard link"):
        PassLog(db).close()
    assert victim.read_bytes() == b"someone else's file\n"


def test_a_station_whose_log_is_a_link_keeps_its_anchors_found(tmp_path):
    """Before, a writer kept the anchors file beside the link it opened the log by; now it is
    beside the real file. The readers find the old one, and the next writer moves it."""
    data = Path(os.environ["SMP_DATA_DIR"])
    volume = tmp_path / "volume"
    volume.mkdir()
    real, link = volume / "passlog.sqlite", data / "passlog.sqlite"
    link.symlink_to(real)
    with PassLog(real) as log:
        closed_session(log, "C-1")
        closed_session(log, "C-2")
    old = data / "passlog.anchors.jsonl"
    os.rename(volume / "passlog.anchors.jsonl", old)  # where the earlier writer put it
    result = CliRunner().invoke(main, ["sessions", "verify"])
    assert result.exit_code == 0, result.output
    with PassLog(link) as log:  # a writer by the link's name: moved beside the real file
        closed_session(log, "C-3")
    assert not old.exists() and (volume / "passlog.anchors.jsonl").is_file()
    result = CliRunner().invoke(main, ["sessions", "verify"])
    assert result.exit_code == 0, result.output
