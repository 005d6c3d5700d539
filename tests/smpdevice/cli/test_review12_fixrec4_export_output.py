"""Review 12 (REVG-2): `smp sessions export -o FILE` is written whole or not at all.

README: a command's output that cannot be written is said in one line; docs/safety.md:
`smp sessions export -o FILE` is 0600. An export cut by a full disk, a damaged record or
Ctrl-C must never stay under the name asked for, looking like the export.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def _log(path: Path, sessions: int) -> Path:
    with PassLog(path) as log:
        for _ in range(sessions):
            sid = open_session(log)
            for i in range(3):
                log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(),
                             ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
    return path


def _export(db: Path, out: Path, fmt: str = "csv"):
    return CliRunner().invoke(main, ["sessions", "export", "--format", fmt, "--db", str(db),
                                     "-o", str(out)])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_cut_by_a_damaged_record_leaves_no_file_and_an_old_one_as_it_was(
        tmp_path, fmt):
    db = _log(tmp_path / "passlog.sqlite", sessions=3)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE records SET body = 'not json' WHERE seq = (SELECT max(seq) FROM "
                 "records WHERE kind = 'pass_begin')")  # the last pass: rows came before it
    conn.commit()
    conn.close()
    new = tmp_path / "new.csv"
    result = _export(db, new, fmt)
    assert result.exit_code == 3, result.output
    assert not new.exists(), new.read_text()[:200]
    old = tmp_path / "old.csv"
    old.write_text("yesterday's export\n")
    assert _export(db, old, fmt).exit_code == 3
    assert old.read_text() == "yesterday's export\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_complete_export_replaces_the_file_0600_and_leaves_no_temporary(tmp_path):
    db = _log(tmp_path / "passlog.sqlite", sessions=2)
    out = tmp_path / "passes.csv"
    out.write_text("old\n")
    os.chmod(out, 0o644)
    result = _export(db, out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().count(b"\r\n") == 1 + 6 and out.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_an_export_through_a_symlink_replaces_its_target(tmp_path):
    db = _log(tmp_path / "passlog.sqlite", sessions=1)
    (tmp_path / "exports").mkdir()
    target = tmp_path / "exports" / "latest.csv"
    target.write_text("old\n")
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    assert _export(db, link).exit_code == 0
    assert link.is_symlink() and "pass_number" in target.read_text()


def test_an_interrupted_writer_leaves_nothing(tmp_path):
    from smpdevice.records.files import private_text_output

    out = tmp_path / "report.csv"
    with pytest.raises(KeyboardInterrupt), private_text_output(out) as handle:
        handle.write("half a row,")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_export_names_the_file_and_leaves_none(tmp_path):
    """A real full disk (a small tmpfs; root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    db = _log(tmp_path / "passlog.sqlite", sessions=20)
    disk = tmp_path / f"tiny-{uuid.uuid4().hex[:8]}"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = disk / "passes.csv"
        result = _export(db, out)
        assert result.exit_code == 2, result.output
        (line,) = result.output.splitlines()
        assert line.startswith(f"error: cannot write --output {out}: No space left"), line
        assert "not written" in line
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
