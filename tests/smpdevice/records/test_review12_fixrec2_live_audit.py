"""Review 12 (REVD-17, REVG-7, REVG-8): an audit beside a live writer sees one state of the log.

The writer's commits are made to land at a chosen point of a reader's audit: a real writer
(`PassLog`, another connection to the same file) commits from the reader connection's statement
trace, i.e. between two of the audit's statements, as a writer process does when it is
scheduled there. An untouched log must verify every time; a log whose anchors file really
lacks a receipt must still fail."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records import sqlite_signing
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def _session(log: PassLog, *, close: bool = True) -> None:
    sid = open_session(log)
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    if close:
        log.close_session(sid, closed_at=T0, summary={})


def _played(path: Path, sessions: int = 3) -> None:
    with PassLog(path) as log:
        for _ in range(sessions):
            _session(log)


def _audit_with(path: Path, marker: str, action) -> tuple[object, list[str]]:
    """Audit the log read-only; `action` runs (once) as the first statement holding `marker`
    starts. Returns the audit and the statements it ran at."""
    fired: list[str] = []
    errors: list[BaseException] = []

    def trace(sql: str) -> None:
        if not fired and marker in sql:
            fired.append(sql)
            try:
                action()
            except BaseException as exc:  # reported by the test
                errors.append(exc)

    with PassLog(path, readonly=True) as reader:
        reader._conn.set_trace_callback(trace)
        result = reader.audit()
    assert not errors, errors
    return result, fired


def test_records_committed_during_the_walk_are_not_records_added_after_the_head(tmp_path):
    db = tmp_path / "passlog.sqlite"
    _played(db)
    with PassLog(db) as writer:
        count = writer.audit().count
        result, fired = _audit_with(db, "FROM records WHERE seq >",
                                    lambda: _session(writer, close=False))
        assert fired
        assert result.ok, result.problem  # was: "records N..M were added after the head"
        assert result.count == count  # the log as it stood when the audit began
        assert writer.audit().count == count + 3  # the writer's records are there


def test_a_close_committed_after_the_snapshot_is_left_to_the_next_audit(tmp_path):
    # Its receipt is in the anchors file when the audit reads it, its records are not in the
    # audit's snapshot: neither "missing from the log" nor "added after the head".
    db = tmp_path / "passlog.sqlite"
    _played(db)
    with PassLog(db) as writer:
        count = writer.audit().count
        result, fired = _audit_with(db, "SELECT max(seq) FROM records",
                                    lambda: _session(writer))
        assert fired
        assert result.ok, result.problem
        assert (result.count, result.anchors_checked) == (count, 3)
        assert writer.audit().anchors_checked == 4


def _cut_last_receipt(anchors: Path) -> bytes:
    lines = anchors.read_bytes().splitlines(keepends=True)
    anchors.write_bytes(b"".join(lines[:-1]))
    return lines[-1]


def _hold(anchors: Path) -> int:
    """Hold the anchors file exclusively, as a writer does from before a close commits until
    its receipt is appended (sqlite_recovery.anchors_held)."""
    import fcntl

    fd = os.open(anchors, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _open_by_this_process(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


def test_a_reader_waits_for_the_receipt_a_closing_writer_is_appending(tmp_path):
    db = tmp_path / "passlog.sqlite"
    anchors = tmp_path / "passlog.anchors.jsonl"
    _played(db)
    line = _cut_last_receipt(anchors)  # the close is committed, its receipt not yet written
    fd = _hold(anchors)
    results: list[object] = []

    def audit() -> None:
        with PassLog(db, readonly=True) as log:
            results.append(log.audit())

    reader = threading.Thread(target=audit)
    try:
        reader.start()
        deadline = time.monotonic() + 30
        while not _open_by_this_process(anchors) > 1:  # the reader has it open: it waits
            assert reader.is_alive() and time.monotonic() < deadline
            time.sleep(0.001)
        with anchors.open("ab") as out:  # the writer appends the receipt, then lets go
            out.write(line)
    finally:
        os.close(fd)
        reader.join(timeout=60)
    (result,) = results
    assert result.ok, result.problem
    assert (result.anchors_checked, result.pending_close) == (3, None)  # checked, all three


@pytest.fixture
def short_wait(monkeypatch):
    monkeypatch.setattr(sqlite_signing, "ANCHORS_WAIT_S", 0.05, raising=False)


def test_a_close_still_held_by_its_writer_is_said_to_be_written_not_tampered(tmp_path,
                                                                              short_wait):
    db = tmp_path / "passlog.sqlite"
    anchors = tmp_path / "passlog.anchors.jsonl"
    _played(db)
    _cut_last_receipt(anchors)
    fd = _hold(anchors)  # a writer inside its close (stopped there: longer than the wait)
    try:
        with PassLog(db, readonly=True) as log:
            result = log.audit()
            last = log.audit(anchors=False).count
        assert result.ok and result.pending_close == last and result.anchors_checked == 2
        shown = CliRunner().invoke(main, ["sessions", "verify", "--db", str(db)])
        assert shown.exit_code == 0, shown.output
        assert f"being written: the receipt of the session close at record {last}" \
            in shown.output
    finally:
        os.close(fd)
    # Once no writer holds it, the missing receipt is what it is: a failed check.
    with PassLog(db, readonly=True) as log:
        result = log.audit()
    assert result.problem is not None and result.problem.record_id == last
    assert "1 of 3 closes missing" in str(result.problem)


def test_only_the_newest_close_as_the_last_record_is_ever_waited_for(tmp_path, short_wait):
    # Two receipts cut: never a close being written, whoever holds the file.
    db = tmp_path / "passlog.sqlite"
    anchors = tmp_path / "passlog.anchors.jsonl"
    _played(db)
    _cut_last_receipt(anchors)
    _cut_last_receipt(anchors)
    fd = _hold(anchors)
    try:
        with PassLog(db, readonly=True) as log:
            assert "2 of 3 closes missing" in str(log.audit().problem)
    finally:
        os.close(fd)
    # The newest close's receipt cut, but records follow the close: its writer went on, so
    # it appended that receipt long ago.
    db2 = tmp_path / "two" / "passlog.sqlite"
    _played(db2)
    with PassLog(db2) as writer:
        _session(writer, close=False)
    anchors2 = db2.with_name("passlog.anchors.jsonl")
    _cut_last_receipt(anchors2)
    fd = _hold(anchors2)
    try:
        with PassLog(db2, readonly=True) as log:
            result = log.audit()
        assert "1 of 3 closes missing" in str(result.problem)
        assert result.pending_close is None
    finally:
        os.close(fd)
