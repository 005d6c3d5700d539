"""Move a writer's WAL into the main file on a thread of its own, never inside a commit.

SQLite checkpoints by itself inside the commit that takes the WAL past 1000 pages: that commit
then also writes the pages back and fsyncs the main file, and about 1 pass in 75 took 3-4 ms
longer (bench/passlog.py). Here a second connection runs a PASSIVE checkpoint (it never waits
for, nor blocks, the writer) once every `EVERY_COMMITS` commits, on its own thread. Durability
is unchanged: a commit is on disk when its WAL frames are fsynced, checkpointed or not.
SQLite's own checkpoint stays as a safety net at `SAFETY_NET_PAGES` (this thread stuck, say).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

EVERY_COMMITS = 150  # about 750 pages of WAL: under SQLite's own 1000
SAFETY_NET_PAGES = 10_000  # about 40 MiB of WAL


class WalCheckpointer:
    """One writer's checkpoints. `committed()` after each commit; `close()` before the writer
    closes its own connection. The thread starts at the first checkpoint it is asked for."""

    def __init__(self, path: Path, every_commits: int = EVERY_COMMITS) -> None:
        self.path = path
        self.every_commits = every_commits
        self.checkpoints = 0  # completed, for tests and benchmarks
        self._commits = 0
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= self.every_commits:
            self._commits = 0
            self.request()

    def request(self) -> None:
        """Checkpoint soon, on the thread (started on the first request)."""
        if self._closing:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"wal-checkpoint {self.path.name}")
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return  # the safety net checkpoints instead
        try:
            # The checkpoint fsyncs the WAL before and the main file after, as the writer's.
            conn.execute("PRAGMA synchronous=FULL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closing:
                    return
                with contextlib.suppress(sqlite3.Error):  # a failure loses nothing
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
        finally:
            conn.close()
