"""Exports people can trust and honest figures (issue 12 items 4-6)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.passlog import EXPORT_FIELDS, PassLog, PassStats
from smpdevice.records.export import ExportFilter
from tests.smpdevice.records.test_passlog import SCREENING, T0, stats

FORMULAS = ["=HYPERLINK(\"http://x\",\"click\")", "+1+1", "-2+3", "@SUM(A1)", "\tlead",
            "\rcr", "two\r\nlines", "a,b\"c"]


def session_by(log: PassLog, technician: str, client_ref: str, passes: int = 2,
               start: datetime = T0) -> str:
    sid = log.open_session(technician=technician, client_ref=client_ref,
                           session_kind="base_density", pen_serial="SMP-1",
                           firmware_version="1", calibration_id="c", profile_hash="h",
                           screening=SCREENING, simulated=False)
    for i in range(passes):
        pid = log.begin_pass(sid, index=i, zone="top", depth_mm=0.4, speed_hz=90.0,
                             duty_pct=40.0, period_ms=120.0,
                             started_at=start + timedelta(minutes=i))
        log.end_pass(pid, outcome="completed", stats=stats(), ended_at=start)
    return sid


def export(log: PassLog, fmt: str, **kw) -> str:
    out = io.StringIO()
    log.export(fmt, out, **kw)
    return out.getvalue()


def test_exports_are_pseudonymous_by_default(tmp_path):
    with PassLog(tmp_path / "p.sqlite") as log:
        session_by(log, "Ana Silva", "C-0042")
        session_by(log, "Ana Silva", "C-0042")
        session_by(log, "Bo", "C-0099")
        for fmt in ("jsonl", "csv"):
            text = export(log, fmt)
            assert "Ana Silva" not in text and "C-0042" not in text and "Bo" not in text
            assert "screening" not in text and "open_sores" not in text
        rows = [json.loads(line) for line in export(log, "jsonl").splitlines()]
        clients = [r["client_ref"] for r in rows]
        assert clients[0] == clients[3] != clients[4]  # stable per person, distinct per person
        assert all(c.startswith("~") and len(c) == 17 for c in clients)
        named = [json.loads(line) for line in export(log, "jsonl", identified=True).splitlines()]
        assert [r["client_ref"] for r in named][:1] == ["C-0042"]
        assert named[0]["technician"] == "Ana Silva"


@pytest.mark.parametrize("sql", [True, False])
def test_csv_is_safe_to_open_in_a_spreadsheet(tmp_path, monkeypatch, sql):
    import smpdevice.records.export as records_export

    monkeypatch.setattr(records_export, "SQL_EXPORT", sql)
    with PassLog(tmp_path / "p.sqlite") as log:
        for name in FORMULAS:
            session_by(log, name, name, passes=1)
        text = export(log, "csv", identified=True)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == len(FORMULAS) + 1 and all(len(r) == len(EXPORT_FIELDS) for r in rows)
    technicians = [r[EXPORT_FIELDS.index("technician")] for r in rows[1:]]
    assert technicians == ["'" + n if n[0] in "=+-@\t\r" else n for n in FORMULAS]
    assert text.count("\r\n") == len(FORMULAS) + 1 + 2  # rows, and the quoted CRLF twice
    depth = [r[EXPORT_FIELDS.index("depth_min_mm")] for r in rows[1:]]
    assert depth[0] == "0.38"  # numbers are never prefixed


@pytest.mark.parametrize("sql", [True, False])
def test_filters_and_pass_numbers(tmp_path, monkeypatch, sql):
    import smpdevice.records.export as records_export

    monkeypatch.setattr(records_export, "SQL_EXPORT", sql)
    with PassLog(tmp_path / "p.sqlite") as log:
        first = session_by(log, "t", "C-1", passes=3, start=T0)
        second = session_by(log, "t", "C-2", passes=2, start=T0 + timedelta(days=2))

        def rows(**kw):
            text = export(log, "jsonl", identified=True, where=ExportFilter(**kw))
            return [(r["session_id"], r["pass_number"]) for r in map(json.loads,
                                                                   text.splitlines())]

        assert rows() == [(first, 1), (first, 2), (first, 3), (second, 1), (second, 2)]
        assert rows(session=second[:6]) == [(second, 1), (second, 2)]
        assert rows(client="C-1") == [(first, 1), (first, 2), (first, 3)]
        assert rows(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2)) == [
            (first, 2)]  # numbered before filtering
        assert rows(since=T0 + timedelta(days=1)) == [(second, 1), (second, 2)]
        assert [p.number for p in log.session(first).passes] == [1, 2, 3]


@settings(deadline=None)
@given(st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=1, max_size=60))
def test_the_mean_depth_never_leaves_min_max(depths):
    s = PassStats()
    for depth_mm in depths:
        s.add(depth_mm, 90.0)
    assert s.depth_min_mm <= s.depth_mean_mm <= s.depth_max_mm


def test_a_mean_that_plain_summation_put_above_the_max():
    s = PassStats()
    for _ in range(3):
        s.add(0.38, 90.0)
    assert sum([0.38] * 3) / 3 > 0.38  # what the old code stored: a mean above the max
    assert s.depth_mean_mm == 0.38 == s.depth_max_mm


def test_burst_speed_and_duty_weighted_mean_are_both_kept():
    s = PassStats()
    for speed_hz in (90.0, 90.0, 0.0, 0.0, 0.0):  # 40 % duty
        s.add(0.4, speed_hz)
    figures = s.figures()
    assert figures["speed_burst_hz"] == 90.0 and figures["speed_mean_hz"] == 36.0
    assert PassStats.from_figures(figures).figures() == figures


def test_passes_are_numbered_from_1_in_show_and_csv(tmp_path):
    with PassLog(tmp_path / "p.sqlite") as log:
        session_by(log, "t", "C-1", passes=2)
        rows = list(csv.DictReader(io.StringIO(export(log, "csv"), newline="")))
    assert [r["pass_number"] for r in rows] == ["1", "2"]
    assert "index" not in rows[0]


def test_since_must_be_timezone_aware_in_the_python_path():
    f = ExportFilter(since=datetime(2025, 1, 1, tzinfo=UTC))
    assert f.matches("S1", "C", "2025-01-02T00:00:00+00:00")
    assert not f.matches("S1", "C", "2024-12-31T23:00:00-00:30")


_CELL = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) | st.sampled_from(
    FORMULAS) | st.builds(lambda c, t: c + t, st.sampled_from("=+-@\t\r,\"\n"), st.text(max_size=4))


@settings(deadline=None, max_examples=25)  # each example writes a real log
@given(technician=_CELL, client=_CELL, zone=_CELL, faults=st.lists(_CELL, max_size=2),
       identified=st.booleans(), windowed=st.booleans())
def test_the_fast_csv_is_the_generic_csv_for_any_text(tmp_path_factory, technician, client,
                                                      zone, faults, identified, windowed):
    """The SQLite CSV path (cells from one parse per body, the guard skipped where no cell can
    start like a formula) writes exactly what the record-by-record path writes, guard and
    quoting included, for any names, zones and fault names, filtered or not."""
    import smpdevice.records.export as records_export

    db = tmp_path_factory.mktemp("csv") / "p.sqlite"
    with PassLog(db) as log:
        sid = session_by(log, technician, client, passes=1)
        pid = log.begin_pass(sid, index=1, zone=zone or "z", depth_mm=0.1 + 0.2, speed_hz=90,
                             duty_pct=40.0, period_ms=120.0, started_at=T0)
        log.end_pass(pid, outcome="fault", stats=stats(), ended_at=T0, fault_code=33,
                     fault_names=faults)
        log.begin_pass(sid, index=2, zone="top", depth_mm=0.4, speed_hz=90.0, duty_pct=40.0,
                       period_ms=120.0, started_at=T0 + timedelta(minutes=5))  # in progress
        where = ExportFilter(since=T0 + timedelta(seconds=30)) if windowed else None
        fast = export(log, "csv", identified=identified, where=where)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(records_export, "SQL_EXPORT", False)
            generic = export(log, "csv", identified=identified, where=where)
    assert fast == generic
    rows = list(csv.reader(io.StringIO(fast, newline="")))
    assert all(len(r) == len(EXPORT_FIELDS) for r in rows)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                   for row in rows[1:] for cell in row)
