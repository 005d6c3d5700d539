"""The pass log's commit path (issue 12, speed): what a commit does and does not do, and that
an older log still opens and verifies after the schema moved on. Real SQLite, no timings."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest

from smpdevice.passlog import PassLog, PassLogError, PassOutcome
from smpdevice.records import sqlite_file, sqlite_schema, sqlite_signing
from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite_checkpoint import EVERY_COMMITS, SAFETY_NET_PAGES
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

KEY = InstallationKey.generate()
TRUSTED = {KEY.fingerprint: KEY.public}


def _wait_for(condition, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def _passes(log: PassLog, sid: str, count: int) -> None:
    for i in range(count):
        log.end_pass(begin(log, sid, i), outcome=PassOutcome.completed, stats=stats(),
                     ended_at=T0)


def test_commits_leave_the_wal_checkpoint_to_a_thread_of_its_own(tmp_path):
    """No commit runs SQLite's checkpoint (its own stays only as a far safety net); after
    EVERY_COMMITS commits a second connection moves the WAL into the main file."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        pages = log._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert pages == SAFETY_NET_PAGES and SAFETY_NET_PAGES >= 10 * 1000
        sid = open_session(log)
        size_before = db.stat().st_size
        _passes(log, sid, EVERY_COMMITS // 2 + 1)
        checkpointer = log._checkpointer
        assert _wait_for(lambda: checkpointer.checkpoints >= 1)
        assert _wait_for(lambda: db.stat().st_size > size_before)  # the WAL reached the file
        assert log.verify(trusted=TRUSTED) is None
    assert not any(t.name == f"wal-checkpoint {db.name}" for t in threading.enumerate())
    assert not db.with_name(db.name + "-wal").exists()  # closed cleanly: WAL checkpointed
    with PassLog(db, readonly=True) as log:
        assert log.audit(trusted=TRUSTED).count == 1 + 2 * (EVERY_COMMITS // 2 + 1)


def test_a_reader_starts_no_checkpoint_thread(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        open_session(log)
    with PassLog(db, readonly=True) as log:
        assert log._checkpointer is None


def test_begin_pass_writes_no_progress_row_and_recovery_is_unchanged(tmp_path):
    """A begun pass without a checkpoint needs no `progress` row: recovery ends it at its
    start with no figures, and the session still refuses to close while it runs."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        sid = open_session(log)
        pid = begin(log, sid)
        assert log._conn.execute("SELECT count(*) FROM progress").fetchone()[0] == 0
        with pytest.raises(PassLogError, match="still has 1 pass"):
            log.close_session(sid, closed_at=T0, summary={})
    with PassLog(db, key=KEY) as log:  # the process "died": recovery
        assert log.recovered == [pid]
        (p,) = log.passes()
        assert (p.outcome, p.samples, p.ended_at) == ("controller_crashed", 0, p.started_at)
        log.close_session(sid, closed_at=T0, summary={})
        assert log.verify(trusted=TRUSTED) is None


def test_a_failed_transaction_forgets_the_cached_tail(tmp_path, monkeypatch):
    """The writer keeps the last (seq, hash) instead of reading it at every commit; a
    transaction that appended and then failed must not leave it ahead of the file."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        sid = open_session(log)
        real = sqlite_signing.write_head

        def failing(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(sqlite_signing, "write_head", failing)
        with pytest.raises(PassLogError, match="disk I/O error"):
            begin(log, sid)
        monkeypatch.setattr(sqlite_signing, "write_head", real)
        _passes(log, sid, 2)
        assert log.verify(trusted=TRUSTED) is None
        assert [r.seq for r in log.records()] == [1, 2, 3, 4, 5]


def _as_schema_3(monkeypatch) -> None:
    """Write logs as the release before `session_resume` did (schema 3)."""
    monkeypatch.setattr(sqlite_file, "MIGRATIONS", sqlite_schema.MIGRATIONS[:3])
    monkeypatch.setattr(sqlite_file, "SCHEMA_VERSION", 3)


def test_a_schema_3_log_opens_migrates_and_verifies_with_its_anchors(tmp_path, monkeypatch):
    """An older log (signed heads, anchors file) is read as it is, then migrated by the next
    writer (the records table rebuilt for `session_resume`) and still verifies: the same
    records, hashes, signed heads and receipts; new records chain on."""
    db = tmp_path / "passlog.sqlite"
    with monkeypatch.context() as patch:
        _as_schema_3(patch)
        with PassLog(db, key=KEY) as log:
            sid = open_session(log)
            _passes(log, sid, 3)
            receipt = log.close_session(sid, closed_at=T0, summary={"passes": 3})
            open_session(log, "C-0043")  # left open, as a crash would
            before = [(r.seq, r.hash) for r in log.records()]
    with PassLog(db, readonly=True) as log:  # a reader does not migrate
        assert log._version() == 3
        assert log.verify(trusted=TRUSTED) is None
    with PassLog(db, key=KEY) as log:
        assert log._version() == sqlite_schema.SCHEMA_VERSION >= 4
        assert [(r.seq, r.hash) for r in log.records()] == before
        assert log.verify(trusted=TRUSTED) is None  # anchors file included
        second = log.sessions()[1].session_id
        log.resume_session(second, resumed_at=datetime.now(UTC), details={"why": "test"})
        _passes(log, second, 1)
    with PassLog(db, readonly=True) as log:
        result = log.audit(trusted=TRUSTED, receipts=[("kept", receipt)])
        assert result.ok, result.problem
        assert result.count == len(before) + 3 and result.anchors_checked == 2
