"""A log being created reads as empty (issue 11 item 9).

The writer is paused, for real, in the middle of creating its schema (a trace callback on its own
connection blocks on an event); a reader then opens and reads the same file from another thread.
No sleeps: each side waits on an event the other sets.
"""

from __future__ import annotations

import io
import sqlite3
import threading

import pytest

from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_passlog import open_session

WAIT_S = 60.0  # generous: only a broken test ever waits this long


class PausedWriter:
    """Creates a pass log in a thread, pausing when its connection reaches `statement`."""

    def __init__(self, db, statement: str, monkeypatch):
        self.db, self.statement = db, statement
        self.paused, self.resume = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        real_connect = sqlite3.connect

        def connect(*args, **kwargs):
            conn = real_connect(*args, **kwargs)
            if threading.current_thread() is self.thread:
                conn.set_trace_callback(self._trace)
            return conn

        monkeypatch.setattr(sqlite3, "connect", connect)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _trace(self, sql: str) -> None:
        if sql.lstrip().startswith(self.statement) and not self.paused.is_set():
            self.paused.set()
            assert self.resume.wait(WAIT_S), "the test never resumed the writer"

    def _run(self) -> None:
        try:
            with PassLog(self.db) as log:
                open_session(log)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def __enter__(self) -> PausedWriter:
        self.thread.start()
        assert self.paused.wait(WAIT_S), f"the writer never reached {self.statement!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.resume.set()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def read_everything(db) -> tuple:
    with PassLog(db, readonly=True) as log:
        out = io.StringIO()
        count = log.export("csv", out)
        return log.sessions(), log.passes(), log.verify(), log.head(), count


@pytest.mark.parametrize("statement", [
    "CREATE TABLE schema_version",  # the first schema statement: the tables do not exist yet
    "CREATE TABLE records",
    "CREATE TABLE chain_head",  # the last migration step: earlier steps written, not committed
    "INSERT INTO schema_version",
])
def test_a_log_being_created_reads_as_empty(tmp_path, monkeypatch, statement):
    db = tmp_path / "passlog.sqlite"
    with PausedWriter(db, statement, monkeypatch):
        assert db.exists()  # the writer has created the file and is inside its schema
        sessions, passes, broken, head, count = read_everything(db)
        assert (sessions, passes, broken, count) == ([], [], None, 0)
        assert head[0] == 0
    # The writer carried on; its session is there for the next reader.
    sessions, *_ = read_everything(db)
    assert len(sessions) == 1
