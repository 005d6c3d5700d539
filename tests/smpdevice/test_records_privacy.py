"""Privacy of the records (issue 12 item 4): modes whatever the umask; pseudonymous exports."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest

from smpdevice.calibration_store import CalibrationStore
from smpdevice.passlog import PassLog
from smpdevice.paths import data_dir
from tests.smpdevice.test_calibration_store import cal
from tests.smpdevice.test_passlog import T0, begin, open_session, stats


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_data_directory_is_0700_and_every_file_0600(tmp_path, monkeypatch, umask):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    old = os.umask(umask)
    try:
        directory = data_dir()
        with PassLog.open() as log:
            sid = open_session(log)
            log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=1), summary={})
            store = CalibrationStore()
            store.save(cal())
            files = sorted(p.name for p in directory.iterdir())
            assert {"passlog.sqlite", "passlog.sqlite-wal", "passlog.sqlite-shm",
                    "passlog.sqlite.lock", "passlog.anchors.jsonl",
                    "calibrations.sqlite"} <= set(files)
            loose = {p.name: oct(mode(p)) for p in directory.iterdir() if mode(p) != 0o600}
    finally:
        os.umask(old)
    assert mode(directory) == 0o700
    assert loose == {}


def test_an_existing_loose_log_is_tightened_by_the_next_writer(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        open_session(log)
    for path in tmp_path.iterdir():
        path.chmod(0o644)
    with PassLog(db) as log:
        open_session(log)
        assert {p.name: mode(p) for p in tmp_path.iterdir()
                if p.name.startswith("passlog.sqlite")} == {
            "passlog.sqlite": 0o600, "passlog.sqlite-wal": 0o600, "passlog.sqlite-shm": 0o600,
            "passlog.sqlite.lock": 0o600}
