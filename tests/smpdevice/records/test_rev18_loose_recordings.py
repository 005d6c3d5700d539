"""Review 18 (records) finding 8: the next writer tightens older frame recordings too.

docs/safety.md: every file in the data directory is 0600 whatever the umask, "a looser file
left by an older version is tightened by the next writer"; the recordings (health data, the
whole conversation with the pen) were left 0644. Real SQLite and real files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from smpdevice.passlog import PassLog


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_the_next_writer_tightens_older_recordings(tmp_path):
    db = tmp_path / "passlog.sqlite"
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    recordings.chmod(0o755)
    older = [recordings / f"S{i:016x}.mcap" for i in range(3)]
    for path, mode in zip(older, (0o644, 0o666, 0o600), strict=True):
        path.write_bytes(b"\x89MCAP0\r\n")
        path.chmod(mode)
    partial = recordings / "S00000000000000ff.mcap.partial"  # any file there: the same
    partial.write_bytes(b"")
    partial.chmod(0o640)
    elsewhere = tmp_path / "elsewhere.txt"  # a symlink's target is not the folder's file
    elsewhere.write_text("x")
    elsewhere.chmod(0o644)
    (recordings / "link.mcap").symlink_to(elsewhere)
    (recordings / "sub").mkdir(mode=0o755)
    (recordings / "sub").chmod(0o755)
    with PassLog(db):  # a writer's open
        pass
    assert [_mode(p) for p in older] == [0o600] * 3
    assert _mode(partial) == 0o600 and _mode(recordings) == 0o700
    assert _mode(elsewhere) == 0o644 and _mode(recordings / "sub") == 0o755


def test_a_reader_changes_no_mode(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db):
        pass
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "S0.mcap").write_bytes(b"")
    (recordings / "S0.mcap").chmod(0o644)
    with PassLog(db, readonly=True):
        pass
    assert _mode(recordings / "S0.mcap") == 0o644


def test_a_log_without_recordings_makes_no_folder(tmp_path):
    with PassLog(tmp_path / "passlog.sqlite"):
        pass
    assert not (tmp_path / "recordings").exists()
