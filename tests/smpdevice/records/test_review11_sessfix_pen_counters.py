"""Review 11, F15 (records): a pass's begin record keeps the pen's cumulative counters, its
uptime and the host's lease (`pen_counters`), chained like the rest of the body, so a resume
after a host crash can count the crashed pass by the pen. An added field of the body: a log
with and without it verifies, exports the same columns, and a pass begun without it keeps its
older body (and hash form)."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from smpdevice.passlog import PassLog, PassOutcome
from tests.smpdevice.records.test_passlog import T0, open_session, stats

COUNTERS = {"strokes": 12_345, "impressions": 1_234, "uptime_ms": 600_000, "lease_ms": 500}


def begin(log: PassLog, sid: str, index: int, **more) -> str:
    return log.begin_pass(sid, index=index, zone="top", depth_mm=0.4, speed_hz=90.0,
                          duty_pct=40.0, period_ms=120.0,
                          started_at=T0 + timedelta(seconds=10 * index), **more)


def begin_body(log: PassLog, pass_id: str) -> dict:
    (record,) = [r for r in log.records() if r.kind == "pass_begin" and r.pass_id == pass_id]
    return json.loads(record.body)


def test_the_pens_counters_are_kept_in_the_chained_begin_record(tmp_path):
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = open_session(log)
        counted = begin(log, sid, 0, pen_counters=COUNTERS)
        older = begin(log, sid, 1)  # as before: no counters given
        for pass_id in (counted, older):
            log.end_pass(pass_id, outcome=PassOutcome.completed, stats=stats(),
                         ended_at=T0 + timedelta(minutes=1))
        assert begin_body(log, counted)["pen_counters"] == COUNTERS
        assert "pen_counters" not in begin_body(log, older)
        assert log.pen_counters_at_begin(sid) == {counted: COUNTERS}
        assert log.verify() is None
        out = io.StringIO()
        assert log.export("jsonl", out) == 2
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert rows[0].keys() == rows[1].keys() and "pen_counters" not in rows[0]


@pytest.mark.parametrize("bad", [
    {**COUNTERS, "impressions": -1}, {**COUNTERS, "strokes": 2**32}, {**COUNTERS, "lease_ms": 0.5},
    {**COUNTERS, "uptime_ms": True}, {"strokes": 1, "impressions": 1}, {**COUNTERS, "extra": 1},
])
def test_counters_that_are_no_u32_whole_numbers_are_refused_before_anything_is_written(
        tmp_path, bad):
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = open_session(log)
        head = log.head()
        with pytest.raises(ValueError, match="pen_counters"):
            begin(log, sid, 0, pen_counters=bad)
        assert log.head() == head and log.passes(sid) == []
