"""A station of its own for the review-18 records tests: its data and key directories in the
env (`stations.station_dirs`), and a pass log of closed sessions signed by its own key."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smpdevice.cli import main
from smpdevice.records.keys import InstallationKey
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def add_session(log: PassLog, passes: int = 2) -> str:
    sid = open_session(log)
    for i in range(passes):
        log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(), ended_at=T0)
    log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
    return sid


def station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sessions: int = 2) -> Path:
    """The station's passlog.sqlite: `sessions` closed sessions of 2 passes (6 records each)."""
    data = station_dirs(tmp_path, monkeypatch)
    with PassLog(data / "passlog.sqlite", key=InstallationKey.load_or_create()) as log:
        for _ in range(sessions):
            add_session(log)
    return data / "passlog.sqlite"


def alter(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(db)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def smp(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))
