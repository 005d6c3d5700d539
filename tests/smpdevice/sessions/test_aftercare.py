"""Aftercare sheet and session summary: pure functions of dates."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

import pytest

from smpdevice.sessions.aftercare import (
    DateWindow,
    aftercare_sheet,
    keep_dry_until,
    next_session_window,
    summarize_passes,
    touch_up_window,
)
from smpdevice.sessions.profiles import SessionKind

DAY = date(2025, 3, 10)


def test_keep_dry_default_and_configurable():
    assert keep_dry_until(DAY) == date(2025, 3, 14)
    assert keep_dry_until(DAY, days=7) == date(2025, 3, 17)
    with pytest.raises(ValueError):
        keep_dry_until(DAY, days=-1)


@pytest.mark.parametrize(("kind", "window"), [
    (SessionKind.base_density, DateWindow(date(2025, 3, 20), date(2025, 4, 9))),
    (SessionKind.shading_definition, DateWindow(date(2025, 3, 20), date(2025, 4, 9))),
    (SessionKind.scar_camouflage, DateWindow(date(2025, 3, 24), date(2025, 4, 9))),
    (SessionKind.adjustment, None),
    (SessionKind.touch_up, None),
])
def test_next_session_window(kind, window):
    assert next_session_window(kind, DAY) == window


def test_touch_up_window_handles_leap_day():
    assert touch_up_window(DAY) == DateWindow(date(2028, 3, 10), date(2031, 3, 10))
    assert touch_up_window(date(2024, 2, 29)) == DateWindow(date(2027, 2, 28),
                                                            date(2030, 2, 28))


def test_sheet_after_session_one_gives_the_next_session():
    sheet = aftercare_sheet(session_kind="base_density", session_date=DAY, client_ref="C-0042")
    assert "Client C-0042, session 1: base density, 2025-03-10" in sheet
    assert "Keep the treated area dry until 2025-03-14 inclusive (4 days)" in sheet
    assert "Next session: 2025-03-20 to 2025-04-09." in sheet
    assert "Touch-up" not in sheet


def test_sheet_after_the_final_session_gives_the_touch_up_window():
    sheet = aftercare_sheet(session_kind=SessionKind.adjustment, session_date=DAY,
                            client_ref="C-0042", keep_dry_days=5,
                            summary={"passes": 4, "impressions": 80, "zones": {"hairline": {}}})
    assert "Today: 4 passes, 80 impressions over hairline." in sheet
    assert "dry until 2025-03-15 inclusive (5 days)" in sheet
    assert "no further session is planned" in sheet
    assert "Touch-up: 2028-03-10 to 2031-03-10 (3-6 years from today)." in sheet


def test_summary_totals_per_zone_and_outcome():
    def p(zone, outcome, start, end, strokes, impressions):
        return SimpleNamespace(zone=zone, outcome=outcome, started_at=start, ended_at=end,
                               strokes=strokes, impressions=impressions)

    t0, t3 = "2025-03-10T10:00:00+00:00", "2025-03-10T10:00:03+00:00"
    summary = summarize_passes([p("top", "completed", t0, t3, 100, 10),
                                p("top", "estop", t0, t3, 50, 5),
                                p("crown", None, t0, None, 0, 0)])
    assert summary["passes"] == 3
    assert summary["outcomes"] == {"completed": 1, "estop": 1, "in_progress": 1}
    assert summary["zones"]["top"] == {"passes": 2, "strokes": 150, "impressions": 15,
                                       "needle_s": 6.0}
    assert (summary["strokes"], summary["impressions"], summary["needle_s"]) == (150, 15, 6.0)


def _summary(outcome: str, completed: int, planned: int, impressions: int = 40) -> dict:
    return {"passes": completed + (outcome != "completed"), "outcomes": {"completed": completed},
            "zones": {"top": {}}, "strokes": impressions * 5, "impressions": impressions,
            "needle_s": 3.0, "outcome": outcome, "planned_passes": planned}


@pytest.mark.parametrize("outcome, why", [
    ("fault", "the pen stopped on a fault"),
    ("estop", "the pen was emergency-stopped"),
    ("link_lost", "the connection to the pen was lost"),
    ("interrupted", "stopped by the technician"),
    ("incomplete", "ended early"),
])
def test_an_incomplete_session_says_so_and_plans_no_next_session(outcome, why):
    sheet = aftercare_sheet(session_kind="base_density", session_date=date(2024, 3, 1),
                            client_ref="C-1", summary=_summary(outcome, 1, 4))
    assert "SESSION INCOMPLETE: 1 of 4 planned passes were completed; " in sheet
    assert why in sheet and "The clinic will contact you" in sheet
    assert "Next session:" not in sheet and "This completes the treatment" not in sheet
    assert "Keep the treated area dry" in sheet  # pigment went in: aftercare still applies


def test_an_incomplete_final_session_is_not_called_the_end_of_treatment():
    sheet = aftercare_sheet(session_kind="adjustment", session_date=date(2024, 3, 1),
                            client_ref="C-1", summary=_summary("fault", 2, 3))
    assert "This completes the treatment" not in sheet and "Touch-up" not in sheet


def test_a_session_with_no_pigment_needs_no_aftercare():
    sheet = aftercare_sheet(session_kind="base_density", session_date=date(2024, 3, 1),
                            client_ref="C-1", summary=_summary("fault", 0, 4, impressions=0))
    assert "No pigment was applied today" in sheet and "Keep the treated area dry" not in sheet


def test_a_completed_session_is_not_called_incomplete():
    sheet = aftercare_sheet(session_kind="base_density", session_date=date(2024, 3, 1),
                            client_ref="C-1", summary=_summary("completed", 4, 4))
    assert "INCOMPLETE" not in sheet and "Next session:" in sheet
