"""review15 F3: `smp sessions verify` runs SQLite's `PRAGMA quick_check`: a damaged page its
full scan of the records never reads (an index) is reported in one line, exit 3, as a writer
refuses the same file; never `ok`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog, PassLogError
from tests.smpdevice.records.test_records_exports import session_by

PAGE_JUNK = b"\xa5" * 1096  # the cell area at the end of the page


def damage_index(db: Path, index: str = "records_pass_begin") -> None:
    """Damage the one page of `index` in the closed, checkpointed log at `db`, as a bad
    sector would; SQLite's own integrity_check then calls the file malformed."""
    with sqlite3.connect(db) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE type = 'index' "
                            "AND name = ?", (index,)).fetchone()[0]
    conn.close()
    with open(db, "r+b") as f:
        f.seek(root * page_size - len(PAGE_JUNK))
        f.write(PAGE_JUNK)
    check = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        check.execute("PRAGMA integrity_check").fetchall()
    check.close()


def _log(db: Path, sessions: int = 3) -> Path:
    with PassLog(db) as log:
        for _ in range(sessions):
            sid = session_by(log, "ana", "C-0042")
            log.close_session(sid, closed_at=datetime.now(UTC), summary={})
    with sqlite3.connect(db) as conn:  # the log is closed: make it one file, no WAL
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db


@pytest.mark.parametrize("index", ["records_pass_begin", "records_session_open",
                                   "records_session"])
def test_verify_names_a_log_sqlite_finds_malformed_exit_3(tmp_path, index):
    db = _log(tmp_path / "passlog.sqlite")
    damage_index(db, index)
    result = CliRunner().invoke(main, ["sessions", "verify", "--db", str(db)])
    assert result.exit_code == 3, result.output
    assert not result.output.startswith("ok:"), result.output
    assert "damaged: restore it from a backup" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output  # one line
    if index == "records_pass_begin":  # the writer reads this one as it opens: it refuses
        with pytest.raises(PassLogError, match="damaged"):  # the same file: they agree
            PassLog(db).close()


def test_a_damaged_pen_log_is_not_checked_the_station_log_is(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    _log(data / "passlog.sqlite", sessions=1)
    damage_index(_log(data / "passlog-SMP-2.sqlite", sessions=1))
    result = CliRunner().invoke(main, ["sessions", "verify"])
    assert result.exit_code == 3, result.output  # a log could not be checked: never ok
    assert "ok: " in result.output  # the station's log is checked all the same
    assert "not checked: cannot read the pass log" in result.output
    assert "passlog-SMP-2.sqlite" in result.output
