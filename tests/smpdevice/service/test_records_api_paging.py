"""Properties of the service's list paging and of the id resolution every reader shares
(review 7b, R06 and R09), on real SQLite logs."""

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
from smpdevice.sessions.resume import pick_session
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

SESSIONS = 7


@pytest.fixture(scope="module")
def station(tmp_path_factory) -> tuple[Path, list[str]]:
    """A station log with 4 sessions and a pen's own log with 3 beside it."""
    root = tmp_path_factory.mktemp("data")
    ids: list[str] = []
    key = InstallationKey.generate()
    for name, count in (("passlog.sqlite", 4), ("passlog-SMP-0001.sqlite", SESSIONS - 4)):
        with PassLog(root / name, key=key) as log:
            for _ in range(count):
                sid = open_session(log)
                log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(),
                             ended_at=T0)
                log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})
                ids.append(sid)
    return root / "passlog.sqlite", ids


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, records_api.LIST_PAGE_MAX), start=st.none() | st.integers(0, 12))
def test_a_page_is_a_slice_of_every_session_and_says_so(station, limit, start):
    path, ids = station
    answer = records_api.list_sessions(path, start, limit)
    listed = [s["session_id"] for s in answer["sessions"]]
    first = answer["start"]
    assert answer["total"] == SESSIONS
    assert listed == ids[first:first + limit]  # oldest first, across both logs
    assert answer["truncated"] == (len(listed) < SESSIONS)
    if start is None:  # the default page is the newest
        assert listed == ids[-limit:]


@pytest.mark.parametrize("limit, start", [(0, None), (501, None), (True, None), (5, -6),
                                          (5, "0"), ("5", None)])
def test_a_bad_page_is_refused_naming_it(station, limit, start):
    with pytest.raises(SmpError, match="limit|start"):
        records_api.list_sessions(station[0], start, limit)


ids = st.text(alphabet="Sab01", min_size=1, max_size=4)


@given(found=st.lists(st.tuples(st.sampled_from(["a.sqlite", "b.sqlite"]), ids), max_size=6),
       wanted=ids)
def test_an_id_names_exactly_one_session_or_is_refused(found, wanted):
    """The rule every reader shares: the exact id, else the one session it prefixes."""
    found = list(dict.fromkeys((Path(p), sid) for p, sid in found))
    matching = [f for f in found if f[1].startswith(wanted)]
    exact = [f for f in matching if f[1] == wanted]
    try:
        picked = pick_session(matching, wanted, where="w", hint="h", error=SmpError,
                              todo="use --db", read_only=True)
    except SmpError as exc:
        assert len(exact or matching) != 1
        assert ("no session" in str(exc)) == (not matching)
        assert "nothing was changed" not in str(exc)
    else:
        assert [picked] == (exact or matching)
