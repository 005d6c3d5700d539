"""Review 18b (finding 3): the service's `sessions.verify` ("every log checked as `smp sessions
verify` checks it") never looked for copies: the station's log copied whole (with its anchors)
to `passlog-SMPX.sqlite` answered ok, its records counted twice, where the command line says
`copied:`, exit 1. Now the same rule (`logset.copies`), each log counted once. A real service,
real SQLite."""

from __future__ import annotations

import shutil

from tests.smpdevice.service.conftest import data_dir, run, service, sim  # noqa: F401
from tests.smpdevice.service.test_records_api_logs import (
    _own_key_dir,  # noqa: F401
    ask,
    write_sessions,
)
from tests.smpdevice.service.test_service_resume import log_path


def test_the_services_verify_names_a_whole_copy_and_counts_it_once(service):  # noqa: F811
    station = log_path(service)
    write_sessions(station, 1)
    alone = run(ask(service, "sessions.verify"))
    assert alone["ok"] is True and alone["records"] > 0, alone
    copy = station.with_name("passlog-SMPX.sqlite")
    shutil.copy(station, copy)
    shutil.copy(station.with_name("passlog.anchors.jsonl"),
                station.with_name("passlog-SMPX.anchors.jsonl"))
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is False, verified  # was: ok, records counted twice
    assert verified["problem"].startswith(f"copied: the pass log {copy} holds the same log "
                                          f"as {station}"), verified
    assert verified["records"] == alone["records"], verified
    assert [x["ok"] for x in verified["logs"]] == [True, False], verified


def test_an_older_copy_is_named_whichever_name_sorts_first(service):  # noqa: F811
    station = log_path(service)
    write_sessions(station, 1)
    backup = station.with_name("passlog-0.sqlite")  # a stale backup left beside the log
    saved = station.parent.parent
    shutil.copy(station, saved / "saved.sqlite")
    shutil.copy(station.with_name("passlog.anchors.jsonl"), saved / "saved.anchors.jsonl")
    write_sessions(station, 1)
    newer = run(ask(service, "sessions.verify"))
    shutil.copy(saved / "saved.sqlite", backup)  # a whole backup: its anchors too
    shutil.copy(saved / "saved.anchors.jsonl", backup.with_name("passlog-0.anchors.jsonl"))
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is False and "an older copy of it" in verified["problem"], verified
    assert verified["records"] == newer["records"], verified


def test_the_services_list_reads_the_log_written_on_and_names_the_backup(service):  # noqa: F811
    station = log_path(service)
    write_sessions(station, 1)
    saved = station.parent.parent / "saved.sqlite"
    shutil.copy(station, saved)
    newer = write_sessions(station, 1)
    shutil.copy(saved, station.with_name("passlog-0.sqlite"))  # sorts before, stale
    listed = run(ask(service, "sessions.list"))
    assert newer[0] in [s["session_id"] for s in listed["sessions"]], listed
    assert listed["total"] == 2, listed
    [said] = listed["warnings"]
    assert "an older copy of it" in said and "left out" not in said, said
