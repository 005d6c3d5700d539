"""A writer's open refuses a log another pass log of its directory holds, whatever the names
(records.logset, the readers' one finder): a copy of `chair2.sqlite` (`smp run --db <data
dir>/chair2.sqlite`) kept beside it as `chair2-copy.db` was never seen (only `passlog*.sqlite`
names were checked), and two writers could split the log in two."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from smpdevice.paths import CALIBRATIONS_NAME
from smpdevice.records.keys import InstallationKey
from smpdevice.records.logset import logs_beside, pass_logs_in
from smpdevice.records.model import PassLogError
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session
from tests.smpdevice.records.stations import station_dirs


def test_a_copy_under_any_name_is_refused_at_a_writers_open(tmp_path, monkeypatch):
    data = station_dirs(tmp_path, monkeypatch)
    chair2 = data / "chair2.sqlite"
    with PassLog(chair2, key=InstallationKey.load_or_create()) as log:
        add_session(log)
    copy = data / "chair2-copy.db"  # not even named *.sqlite: an SQLite file, a pass log
    shutil.copy(chair2, copy)
    before = chair2.read_bytes()
    for writing, other in ((chair2, copy), (copy, chair2)):
        with pytest.raises(PassLogError) as refused:
            PassLog(writing, key=InstallationKey.load_or_create())
        said = str(refused.value)
        assert refused.value.exit_code == 3 and "\n" not in said
        assert f"move {other} out" in said and "Nothing was written" in said, said
    assert chair2.read_bytes() == before
    copy.unlink()
    with PassLog(chair2, key=InstallationKey.load_or_create()) as log:  # alone: records on
        add_session(log)


def test_the_one_finder_takes_logs_by_content_and_leaves_the_rest_out(tmp_path, monkeypatch):
    from smpdevice.calibration.store import CALIBRATIONS_NAME as STORE_NAME

    assert CALIBRATIONS_NAME == STORE_NAME  # the one name, kept in step
    data = station_dirs(tmp_path, monkeypatch)
    with PassLog(data / "chair2.sqlite", key=InstallationKey.load_or_create()) as log:
        add_session(log)
    foreign = sqlite3.connect(data / "inventory.sqlite")  # another program's: no log
    foreign.execute("CREATE TABLE schema_version (v INTEGER)")
    foreign.commit()
    foreign.close()
    (data / CALIBRATIONS_NAME).write_bytes(b"SQLite format 3\x00" + b"\0" * 100)  # damaged
    (data / "notes.txt").write_text("chair 2\n")
    (data / "broken.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    (data / "spare.sqlite").mkdir()  # named like a log: kept, its open says why
    import os

    os.mkfifo(data / "pipe.db")  # never opened: a read would wait for a writer forever
    (data / "gone.sqlite").symlink_to(tmp_path / "unmounted" / "x.sqlite")
    found = [p.name for p in pass_logs_in(data)]
    assert found == ["broken.sqlite", "chair2.sqlite", "gone.sqlite", "spare.sqlite"]
    station = data / "passlog.sqlite"
    assert logs_beside(station) == [station, *(data / n for n in found)]


def test_no_output_writes_over_a_side_file_of_a_log_of_any_name(tmp_path, monkeypatch):
    from smpdevice.paths import RecordOverwriteError, refuse_record_output

    data = station_dirs(tmp_path, monkeypatch)
    with PassLog(data / "chair2.sqlite", key=InstallationKey.load_or_create()) as log:
        add_session(log)
    for name in ("chair2.sqlite-wal", "chair2.sqlite-journal"):  # was: written over
        with pytest.raises(RecordOverwriteError, match="side file of a pass log"):
            refuse_record_output(data / name, "--out")
    refuse_record_output(data / "chair2.txt", "--out")  # a new file beside it: fine


def test_a_log_of_any_name_deleted_its_receipts_left_is_missing(tmp_path, monkeypatch):
    from tests.smpdevice.records._rev18_station import smp

    data = station_dirs(tmp_path, monkeypatch)
    key = InstallationKey.load_or_create()
    for name in ("passlog.sqlite", "chair2.sqlite", "chair3.db"):
        with PassLog(data / name, key=key) as log:
            add_session(log)
    assert (data / "chair2.anchors.jsonl").exists() and (data / "chair3.anchors.jsonl").exists()
    assert smp("sessions", "verify").exit_code == 0  # chair3.db's anchors: its own, no loss
    (data / "chair2.sqlite").unlink()
    verified = smp("sessions", "verify")
    assert verified.exit_code == 1, verified.output  # was: exit 0, its records lost unseen
    assert f"the pass log {data / 'chair2.sqlite'} is missing" in verified.output
