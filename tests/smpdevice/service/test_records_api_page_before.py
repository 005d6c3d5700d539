"""`sessions.list` paging as docs/service.md gives it (review 8b, R03): from the default
(newest) page, `start - limit` is the page before, down to the oldest sessions, whatever the
total and the limit. Real SQLite logs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.errors import SmpError
from smpdevice.passlog import PassLog
from smpdevice.records.keys import InstallationKey
from smpdevice.service import records_api
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

MOST = 7


@pytest.fixture(scope="module")
def stations(tmp_path_factory) -> dict[int, tuple[Path, list[str]]]:
    """A station (its log, ids oldest first) for each total 0..MOST."""
    key = InstallationKey.generate()
    found = {}
    for total in range(MOST + 1):
        root = tmp_path_factory.mktemp(f"total{total}")
        ids = []
        with PassLog(root / "passlog.sqlite", key=key) as log:
            for _ in range(total):
                sid = open_session(log)
                log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(),
                             ended_at=T0)
                log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
                ids.append(sid)
        found[total] = (root / "passlog.sqlite", ids)
    return found


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=st.integers(0, MOST), limit=st.integers(1, MOST + 2))
def test_start_minus_limit_pages_back_to_the_oldest(stations, total, limit):
    path, ids = stations[total]
    answer = records_api.list_sessions(path, None, limit)  # the newest page
    seen = [s["session_id"] for s in answer["sessions"]]
    pages = 1
    while answer["start"] > 0:  # the doc: `start - limit` is the page before
        answer = records_api.list_sessions(path, answer["start"] - limit, limit)
        seen = [s["session_id"] for s in answer["sessions"]] + seen
        pages += 1
        assert pages <= total + 1
    assert seen == ids  # every session once, oldest first: the oldest are reachable
    assert answer["start"] == 0


def test_a_negative_start_is_a_shorter_first_page(stations):
    path, ids = stations[MOST]
    answer = records_api.list_sessions(path, 2 - 5, 5)
    assert [s["session_id"] for s in answer["sessions"]] == ids[:2]
    assert answer["start"] == 0 and answer["truncated"]
    assert records_api.list_sessions(path, -5, 5)["sessions"] == []  # before the oldest


def test_a_start_before_minus_limit_is_refused_naming_the_range(stations):
    path, _ = stations[MOST]
    with pytest.raises(SmpError, match=r"start = -6 .* -5 or more"):
        records_api.list_sessions(path, -6, 5)
