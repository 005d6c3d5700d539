"""READ6 items 1 and 2: one answer cap, and sessions.list's paging bounds as the schema says.

- A `sessions.export` answer is capped by the connection's one cap (limits.MAX_ANSWER_BYTES):
  an export of 9 MiB (over the old second cap of 8 MiB) is answered whole; one over 16 MiB gets
  the -32000 naming max_answer_bytes, as docs/service.md says.
- `sessions.list`'s schema is built from LIST_PAGE_MAX; a `start` below `-limit` (which no
  JSON Schema can express) is -32602, like the schema's own refusals, not -32000.
A real service, a real simulated pen, real SQLite.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from smpdevice.service.limits import LIST_PAGE_MAX, MAX_ANSWER_BYTES
from smpdevice.service.schema import METHODS
from tests.smpdevice.records.test_passlog import T0, open_session, stats
from tests.smpdevice.service.conftest import data_dir, service, sim  # noqa: F401  (fixtures)
from tests.smpdevice.service.test_records_api_logs import ask, write_sessions
from tests.smpdevice.service.test_service_resume import log_path

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def _own_key_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))


def write_wide_pass(path: Path, zone_chars: int) -> None:
    """One session whose one pass has a zone name of `zone_chars` characters: the export's
    size (what the cap measures) without writing tens of thousands of passes."""
    with PassLog.open(path) as log:
        sid = open_session(log)
        pass_id = log.begin_pass(sid, index=0, zone="z" * zone_chars, depth_mm=0.4,
                                 speed_hz=90.0, duty_pct=40.0, period_ms=120.0, started_at=T0)
        log.end_pass(pass_id, outcome="completed", stats=stats(), ended_at=T0)
        log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})


def test_an_export_under_the_answer_cap_is_answered_and_one_over_it_names_the_cap(
        service):  # noqa: F811
    station = log_path(service)
    write_wide_pass(station, 9 * MIB)  # over the old 8 MiB export cap, under the answer cap
    answer = run_ask(service, "sessions.export", format="jsonl")
    assert not isinstance(answer, Exception), answer
    assert answer["count"] == 1 and len(answer["text"]) > 9 * MIB

    write_wide_pass(station, 8 * MIB)  # 17 MiB in all: over the one cap
    refused = run_ask(service, "sessions.export", format="jsonl")
    assert isinstance(refused, Exception)
    assert refused.code == -32000
    assert "max_answer_bytes" in str(refused)
    assert refused.data["max_answer_bytes"] == MAX_ANSWER_BYTES


def test_the_list_schema_is_built_from_the_page_cap():
    props = METHODS["sessions.list"].params["properties"]
    assert props["limit"]["maximum"] == props["limit"]["default"] == LIST_PAGE_MAX
    assert props["start"]["minimum"] == -LIST_PAGE_MAX
    assert "-32602" in props["start"]["description"]


@pytest.mark.parametrize(("start", "limit", "code"), [
    (-400, 100, -32602),  # passes the schema (>= -500), below -limit: the code refuses it
    (-LIST_PAGE_MAX - 1, LIST_PAGE_MAX, -32602),  # the schema refuses it
    (-100, 100, None),  # -limit itself: an empty first page, answered
])
def test_a_start_below_minus_limit_is_invalid_params(service, start, limit,  # noqa: F811
                                                      code):
    write_sessions(log_path(service), 2)
    answer = run_ask(service, "sessions.list", start=start, limit=limit)
    if code is None:
        assert not isinstance(answer, Exception), answer
        assert answer["start"] == 0 and answer["total"] == 2
    else:
        assert isinstance(answer, Exception)
        assert answer.code == code
        assert "start" in str(answer)


def run_ask(service, method: str, **params):  # noqa: F811
    from tests.smpdevice.service.conftest import run

    return run(ask(service, method, **params))
