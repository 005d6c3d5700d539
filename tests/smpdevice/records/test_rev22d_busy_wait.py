"""Session 22 (D): how long an open waits for another program's lock is one constant,
`readonly.BUSY_WAIT_S`, read at each open (tests cut it where the lock is held throughout).
README and docs/technicians.md promise "SQLite's 5 s wait": the constant says 5 s, and the pass
log's writer and reader and the calibrations' writer each wait that long (SQLite's own
`busy_timeout`, read back from each real connection)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.passlog import PassLog
from smpdevice.records import readonly

REPO = Path(__file__).resolve().parents[3]


def busy_timeout_s(conn) -> float:
    return conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000


def test_the_documented_wait_is_the_constant():
    assert readonly.BUSY_WAIT_S == 5.0
    for doc in ("README.md", "docs/technicians.md"):
        said = re.findall(r"SQLite's (\d+(?:\.\d+)?) s wait", (REPO / doc).read_text())
        assert said and {float(s) for s in said} == {readonly.BUSY_WAIT_S}, (doc, said)


@pytest.mark.parametrize("wait_s", [readonly.BUSY_WAIT_S, 0.25])
def test_every_open_waits_the_constant_read_when_it_opens(tmp_path, monkeypatch, wait_s):
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", wait_s)
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as writer:
        assert busy_timeout_s(writer._conn) == wait_s
        with PassLog(db, readonly=True) as reader:
            assert busy_timeout_s(reader._conn) == wait_s
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    with store._connect() as conn:
        assert busy_timeout_s(conn) == wait_s
