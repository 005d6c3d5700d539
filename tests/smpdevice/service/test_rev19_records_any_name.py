"""The service's `sessions.*` (and so the console's records) read every pass log of the data
directory by content, whatever the name (records.logset, the finder `smp sessions` and
`smp run --resume` use): a session recorded with `smp run --db <data dir>/chair2.sqlite` was
invisible to them (only `passlog*.sqlite` names were read). A real service, real SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    connect,
    data_dir,
    run,
    service,
    sim,
)
from tests.smpdevice.service.test_records_api_logs import _own_key_dir, ask, write_sessions  # noqa: F401
from tests.smpdevice.service.test_service_resume import log_path


def test_sessions_list_show_and_verify_read_a_log_of_any_name(service):  # noqa: F811
    station = log_path(service)
    (older,) = write_sessions(station, 1)
    chair2 = station.with_name("chair2.sqlite")
    (other,) = write_sessions(chair2, 1)
    foreign = sqlite3.connect(station.with_name("inventory.db"))  # no pass log: left out
    foreign.execute("CREATE TABLE schema_version (v INTEGER)")
    foreign.commit()
    foreign.close()
    listed = run(ask(service, "sessions.list"))
    assert sorted(s["session_id"] for s in listed["sessions"]) == sorted([older, other])
    assert listed["warnings"] == [], listed  # was: only `older`, chair2's never seen
    shown = run(ask(service, "sessions.show", session_id=other))
    assert shown["session"]["session_id"] == other and shown["warnings"] == []
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is True, verified
    assert [Path(x["path"]).name for x in verified["logs"]] == [station.name, chair2.name]
