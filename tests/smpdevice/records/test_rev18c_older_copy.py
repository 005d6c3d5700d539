"""Review 18f (F3, F4). F3: an older log (schema 2, no log id) copied beside: a writer compared
log ids only, so it opened each file, each migration drew its own id, and readers (by ids) read
both: a session listed twice, verify ok. Writers and readers now share one rule: the same id,
or the same first record, ids or not. F4: a stale backup the station log extends stopped the
station (exit 3, "writing on would split it in two"): it records on, one `warning:` line
naming the older copy. Real SQLite, real CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import PassLogError
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records._rev18_station import add_session, smp, station
from tests.smpdevice.records.test_rev18_older_log_verify import schema_2_log


def test_an_older_log_copied_beside_is_never_split_by_two_writers(tmp_path, monkeypatch):
    signed = station(tmp_path, monkeypatch, sessions=1)
    older = tmp_path / "older.sqlite"
    schema_2_log(signed, older)
    data = signed.parent
    for name in ("passlog.sqlite", "passlog.anchors.jsonl"):
        (data / name).unlink()
    shutil.copy(older, data / "passlog.sqlite")
    shutil.copy(older, data / "passlog-SMPX.sqlite")
    for name in ("passlog.sqlite", "passlog-SMPX.sqlite"):  # was: each opened, own id drawn
        with pytest.raises(PassLogError, match="the same first record"), \
                PassLog(data / name, key=InstallationKey.load_or_create()):
            pass
    ids = [s["session_id"] for s in json.loads(smp("sessions", "list", "--json").stdout)]
    assert len(ids) == len(set(ids)) == 1, ids


def test_two_ids_drawn_for_one_older_log_are_still_one_log(tmp_path, monkeypatch):
    signed = station(tmp_path, monkeypatch, sessions=1)
    data = signed.parent
    schema_2_log(signed, tmp_path / "older.sqlite")
    for name in ("passlog.sqlite", "passlog.anchors.jsonl"):
        (data / name).unlink()
    aside = tmp_path / "passlog.sqlite"
    for where in (data / "passlog-SMPX.sqlite", aside):  # each migrated on its own: two ids
        shutil.copy(tmp_path / "older.sqlite", where)
        with PassLog(where, key=InstallationKey.load_or_create()) as log:
            if where == aside:
                add_session(log, 1)
    shutil.move(aside, data / "passlog.sqlite")
    shutil.move(tmp_path / "passlog.anchors.jsonl", data / "passlog.anchors.jsonl")
    listed = smp("sessions", "list", "--json")
    ids = [s["session_id"] for s in json.loads(listed.stdout)]
    assert len(ids) == len(set(ids)) == 2, ids  # was: the older session listed twice
    assert "an older log given an id in each file" in listed.stderr, listed.stderr


def test_a_stale_backup_beside_the_station_log_lets_it_record(tmp_path, monkeypatch, capfd):
    db = station(tmp_path, monkeypatch, sessions=1)
    backup = db.with_name("passlog-backup.sqlite")
    shutil.copy(db, tmp_path / "backup.sqlite")
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        add_session(log)  # the station records on after the backup was taken
    shutil.copy(tmp_path / "backup.sqlite", backup)  # then put beside, its anchors file too
    shutil.copy(db.with_name("passlog.anchors.jsonl"), db.with_name("passlog-backup.anchors.jsonl"))
    capfd.readouterr()
    with PassLog(db, key=InstallationKey.load_or_create()) as log:  # was: refused, exit 3
        add_session(log)
    warned = capfd.readouterr().err
    assert warned.count("warning:") == 1 and f"{backup} is an older copy" in warned, warned
    assert "passlog-backup.anchors.jsonl" in warned
    with pytest.raises(PassLogError, match=f"move {backup} out"):  # the stale copy: never
        PassLog(backup, key=InstallationKey.load_or_create())
