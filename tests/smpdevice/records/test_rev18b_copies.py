"""Review 18b (findings 2, 7): of two files of the data directory holding one log, readers
read the first by name: a stale backup `passlog-SMPX-old.sqlite` ('-' < '.') was read in place
of the live `passlog-SMPX.sqlite`, its newer sessions left out (exit 0); a copy of an older
log (schema 2, no log id) was never seen as one: its sessions listed twice. Now the copy whose
chain extends the other's is read (diverged copies: both, named), an older log is matched by
its first record, and a writer refuses a log whose id another file there holds (exit 3)."""

from __future__ import annotations

import json
import shutil

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import PassLogError
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, smp, station
from tests.smpdevice.records.stations import station_dirs
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def _ids(listed) -> list[str]:
    assert listed.exit_code == 0, listed.output
    return [s["session_id"] for s in json.loads(listed.stdout)]


def test_a_stale_backup_sorted_first_hides_no_newer_session(tmp_path, monkeypatch):
    data = station_dirs(tmp_path, monkeypatch)
    live = data / "passlog-SMPX.sqlite"
    with PassLog(live, key=InstallationKey.load_or_create()) as log:
        old = add_session(log)
    shutil.copy(live, tmp_path / "backup.sqlite")
    with PassLog(live, key=InstallationKey.load_or_create()) as log:
        new = add_session(log)  # the writer goes on appending to the live log
    shutil.copy(tmp_path / "backup.sqlite", data / "passlog-SMPX-old.sqlite")  # put beside
    listed = smp("sessions", "list", "--json")
    assert sorted(_ids(listed)) == sorted([old, new])  # was: only `old`, exit 0
    assert (f"{data / 'passlog-SMPX-old.sqlite'} holds the same log as {live}" in listed.stderr
            and "an older copy of it: its 6 records are the first of the 12" in listed.stderr)
    assert smp("sessions", "show", new).exit_code == 0
    verified = smp("sessions", "verify")
    assert verified.exit_code == 1 and "copied: the pass log" in verified.output


def test_a_copy_written_to_is_read_in_place_of_the_station_log(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    pen = tmp_path / "pen.sqlite"
    shutil.copy(db, pen)
    with PassLog(pen, key=InstallationKey.load_or_create()) as log:
        pen_only = add_session(log)  # written to while not beside the station's log
    shutil.copy(pen, db.with_name("passlog-SMPX.sqlite"))
    assert pen_only in _ids(smp("sessions", "list", "--json"))  # was: left out, exit 0


def test_diverged_copies_are_both_read_and_named(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    pen = tmp_path / "pen.sqlite"
    shutil.copy(db, pen)
    with PassLog(pen, key=InstallationKey.load_or_create()) as log:
        pen_only = add_session(log)
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        station_only = add_session(log)
    shutil.copy(pen, db.with_name("passlog-SMPX.sqlite"))
    listed = smp("sessions", "list", "--json")
    assert {pen_only, station_only} <= set(_ids(listed))
    assert "they differ after record 6" in listed.stderr, listed.stderr


def test_a_writer_refuses_a_log_another_file_beside_it_holds(tmp_path, monkeypatch):
    db = station(tmp_path, monkeypatch, sessions=1)
    backup = db.with_name("passlog-SMPX-old.sqlite")
    shutil.copy(db, backup)
    before = db.read_bytes()
    with pytest.raises(PassLogError) as refused:
        PassLog(db, key=InstallationKey.load_or_create())
    assert refused.value.exit_code == 3 and "\n" not in str(refused.value)
    said = str(refused.value)
    assert f"move {backup} out" in said and "Nothing was written" in said, said
    assert db.read_bytes() == before
    link = db.with_name("passlog-LINK.sqlite")  # another name for the same file: one log
    backup.unlink()
    link.symlink_to(db)
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        add_session(log)


def test_a_backup_of_an_older_log_is_read_once(tmp_path, monkeypatch):
    signed = station(tmp_path, monkeypatch, sessions=1)
    data = signed.parent
    schema_2_log(signed, tmp_path / "older.sqlite")
    for side in data.glob("passlog*"):
        side.unlink()
    shutil.copy(tmp_path / "older.sqlite", data / "passlog.sqlite")
    with PassLog(data / "passlog.sqlite", key=InstallationKey.load_or_create()) as log:
        add_session(log, 1)  # the upgraded station records on (migrated, given a log id)
    # the backup taken before upgrading, put back beside it (an identical one is refused to
    # a writer since review 18f: two writers could split it)
    shutil.copy(tmp_path / "older.sqlite", data / "passlog-backup.sqlite")
    listed = smp("sessions", "list", "--json")
    ids = _ids(listed)
    assert len(ids) == len(set(ids)) == 2, ids  # was: the older session listed twice
    assert "the same first record, an older log without an id" in listed.stderr
    verified = smp("sessions", "verify", "--allow-unsigned")
    assert verified.exit_code == 1 and "copied: the pass log" in verified.output, verified.output
