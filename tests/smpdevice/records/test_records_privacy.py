"""Privacy of the records (issue 12 item 4): modes whatever the umask; pseudonymous exports."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.passlog import PassLog
from smpdevice.paths import data_dir
from tests.smpdevice.calibration.test_calibration_store import cal
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


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


def _log_with_a_named_client(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = open_session(log, "C-0042")
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    return db


@pytest.mark.parametrize("identified", [True, False])
def test_an_export_file_is_0600_whatever_the_umask(tmp_path, identified):
    """Review: `export --identified -o FILE` under umask 022 wrote real names 0644."""
    from click.testing import CliRunner

    from smpdevice.cli import main

    db = _log_with_a_named_client(tmp_path)
    loose = tmp_path / "loose.csv"
    loose.write_text("old\n")
    os.chmod(loose, 0o644)
    old = os.umask(0o022)
    try:
        for out in (tmp_path / "new.csv", loose):
            args = ["sessions", "export", "--format", "csv", "--db", str(db), "-o", str(out)]
            result = CliRunner().invoke(main, args + (["--identified"] if identified else []))
            assert result.exit_code == 0, result.output
            assert mode(out) == 0o600, oct(mode(out))
            text = out.read_text(encoding="utf-8")
            assert text.startswith("pass_number,") or "pass_number" in text.splitlines()[0]
            assert ("C-0042" in text) is identified and "old" not in text
    finally:
        os.umask(old)


def test_an_export_to_a_fifo_leaves_its_mode_and_a_bad_path_is_named(tmp_path):
    import threading

    from click.testing import CliRunner

    from smpdevice.cli import main

    db = _log_with_a_named_client(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o644)
    os.chmod(fifo, 0o644)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = CliRunner().invoke(main, ["sessions", "export", "--format", "jsonl", "--db",
                                       str(db), "-o", str(fifo)])
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert b'"pass_number": 1' in got[0] or b'"pass_number":1' in got[0]
    assert mode(fifo) == 0o644  # a device or pipe is not ours to chmod (/dev/stdout)
    missing = tmp_path / "no" / "such" / "dir.csv"
    bad = CliRunner().invoke(main, ["sessions", "export", "--format", "csv", "--db", str(db),
                                    "-o", str(missing)])
    assert bad.exit_code == 2 and f"cannot write --output {missing}" in bad.output
    assert "Traceback" not in bad.output
