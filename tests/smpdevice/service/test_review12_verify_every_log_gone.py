"""Review 12 (after REVD-4): the service's `sessions.verify` names a pass log that was deleted
while its anchors file, holding receipts, was left, also when no log is left at all (it said
"ok: nothing to check"). A real service, real SQLite."""

from __future__ import annotations

from tests.smpdevice.service.conftest import data_dir, run, service, sim  # noqa: F401
from tests.smpdevice.service.test_records_api_logs import (
    _own_key_dir,  # noqa: F401
    ask,
    write_sessions,
)
from tests.smpdevice.service.test_service_resume import log_path


def test_the_only_log_deleted_its_anchors_left_is_not_ok(service):  # noqa: F811
    station = log_path(service)
    write_sessions(station, 1)
    assert run(ask(service, "sessions.verify"))["ok"] is True
    for side in station.parent.glob(station.name + "*"):  # the log and its -wal, -shm, lock
        side.unlink()
    verified = run(ask(service, "sessions.verify"))
    assert verified["ok"] is False, verified
    assert "missing" in verified["problem"], verified


def test_no_log_and_no_anchors_is_nothing_to_check(service):  # noqa: F811
    verified = run(ask(service, "sessions.verify"))
    assert verified == {"ok": True, "problem": None, "records": 0, "head_hash": None,
                        "logs": []}
