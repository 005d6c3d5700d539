"""Review 17 (b17d): a pass cut by a host crash or a lost link, then the pen recalibrated (the
README's own advice for a lapsed calibration), then resumed: the speed check's dots are on the
pen's counters too, and which of them were the pass's cannot be told. A calibration in force
made after the pass began sets the pen's count aside: the pass counts its recorded dots and
the resume says how many may be played again (before, a crash counted the speed check's dots
up to its cap: a zone under-treated)."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from smpdevice.sessions.crash_count import count_crashed
from tests.smpdevice.sessions.test_review11_fixc1_crash_bound import P2_BEGAN, crashed_pass

AT_BEGIN = {"P1": {"impressions": 1000, "strokes": 9000, "uptime_ms": 600_000,
                   "lease_ms": 200}}
NOW = SimpleNamespace(impressions=1012, strokes=9100, uptime_ms=700_000)  # within the cap


@pytest.mark.parametrize("outcome", ["controller_crashed", "link_lost"])
def test_a_calibration_since_the_pass_began_sets_the_pens_count_aside(outcome):
    count = count_crashed([crashed_pass(outcome=outcome)], [], AT_BEGIN, NOW,
                          P2_BEGAN + timedelta(seconds=100),
                          calibrated_at=P2_BEGAN + timedelta(seconds=50))
    assert count.counted == {}
    (record,) = count.records
    assert record["counted"] is False and "calibrated since" in record["why"]
    (note,) = count.notes
    assert "may be played again" in note and "calibrated since" in note


@pytest.mark.parametrize("outcome", ["controller_crashed", "link_lost"])
def test_a_calibration_before_the_pass_leaves_the_count_as_it_was(outcome):
    count = count_crashed([crashed_pass(outcome=outcome)], [], AT_BEGIN, NOW,
                          P2_BEGAN + timedelta(seconds=100),
                          calibrated_at=P2_BEGAN - timedelta(days=1))
    assert count.counted == {"P1": 12}
