"""Rev 20: a `pass_begin` that names its calibration (`calibration`: id, offset_mm, gain) is
exported with that id by every path (SQL JSONL, fast CSV, record by record), whatever the
opening or the latest resumption says; a pass record without it (an older log) is exported as
before. The writer refuses a malformed one before anything is written; the chain holds.
Real SQLite."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from smpdevice.records import export as records_export
from tests.smpdevice.records.test_passlog import SCREENING, T0, stats

PATHS = [True, False]


def _pass(log: PassLog, sid: str, i: int, calibration: dict | None = None) -> str:
    extra = {} if calibration is None else {"calibration": calibration}
    pid = log.begin_pass(sid, index=i, zone="top", depth_mm=0.4, speed_hz=90.0, duty_pct=40.0,
                         period_ms=120.0, started_at=T0 + timedelta(minutes=i), **extra)
    log.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)
    return pid


def _cal(cid: str) -> dict:
    return {"calibration_id": cid, "offset_mm": -0.1, "gain": 1.02}


def _log(tmp_path: Path) -> tuple[Path, str]:
    """One session opened on A: a pass as an older writer left it (no calibration), one on A,
    one on a swapped B, a resumption on C, a pass as older writers left it (C's), one on D,
    one whose id a spreadsheet would run."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = log.open_session(technician="ana", client_ref="C-1", session_kind="base_density",
                               pen_serial="SMP-1", firmware_version="1.0", calibration_id="A",
                               profile_hash="h", screening=SCREENING, simulated=False)
        _pass(log, sid, 0)
        _pass(log, sid, 1, _cal("A"))
        _pass(log, sid, 2, _cal("B"))
        log.resume_session(sid, resumed_at=T0 + timedelta(minutes=10),
                           details={"number": 1, "passes_before": 3, "technician": "bob",
                                    "calibration_id": "C"})
        _pass(log, sid, 3)
        _pass(log, sid, 4, _cal("D"))
        _pass(log, sid, 5, _cal("=E"))
    return db, sid


def _rows(db: Path, fmt: str) -> list[dict]:
    out = io.StringIO()
    with PassLog(db, readonly=True) as log:
        log.export(fmt, out, identified=True)
    if fmt == "jsonl":
        return [json.loads(line) for line in out.getvalue().splitlines()]
    return list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))


@pytest.mark.parametrize("sql", PATHS, ids=["sql", "record-by-record"])
def test_each_pass_is_exported_with_its_own_calibration_older_ones_as_before(
        tmp_path, monkeypatch, sql):
    monkeypatch.setattr(records_export, "SQL_EXPORT", sql)
    db, _sid = _log(tmp_path)
    wanted = ["A", "A", "B", "C", "D", "=E"]
    assert [r["calibration_id"] for r in _rows(db, "jsonl")] == wanted
    assert [r["calibration_id"] for r in _rows(db, "csv")] == [*wanted[:5], "'=E"]  # guarded
    assert [r["technician"] for r in _rows(db, "jsonl")] == ["ana"] * 3 + ["bob"] * 3
    with PassLog(db, readonly=True) as log:
        assert log.verify() is None
        assert [p.calibration for p in log.passes()] == [
            None, _cal("A"), _cal("B"), None, _cal("D"), _cal("=E")]


def test_every_path_writes_the_same_export(tmp_path):
    """With and without the field: the same rows whichever path (no new column)."""
    db, _sid = _log(tmp_path)
    texts = {}
    for sql in PATHS:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(records_export, "SQL_EXPORT", sql)
            for fmt in ("jsonl", "csv"):
                out = io.StringIO()
                with PassLog(db, readonly=True) as log:
                    log.export(fmt, out, identified=True)
                texts[(fmt, sql)] = out.getvalue()
    assert texts[("csv", True)] == texts[("csv", False)]
    assert [json.loads(x) for x in texts[("jsonl", True)].splitlines()] == [
        json.loads(x) for x in texts[("jsonl", False)].splitlines()]


@pytest.mark.parametrize("bad", [
    {"calibration_id": "A", "offset_mm": 0.0},  # gain missing
    {"calibration_id": "", "offset_mm": 0.0, "gain": 1.0},
    {"calibration_id": 5, "offset_mm": 0.0, "gain": 1.0},
    {"calibration_id": "A", "offset_mm": float("nan"), "gain": 1.0},
    {"calibration_id": "A", "offset_mm": 0.0, "gain": True},
    {"calibration_id": "A", "offset_mm": 0.0, "gain": 1.0, "extra": 1},
    "A",
])
def test_a_malformed_calibration_is_refused_before_anything_is_written(tmp_path, bad):
    with PassLog(tmp_path / "passlog.sqlite") as log:
        sid = log.open_session(technician="ana", client_ref="C-1", session_kind="base_density",
                               pen_serial="SMP-1", firmware_version="1.0", calibration_id="A",
                               profile_hash="h", screening=SCREENING, simulated=False)
        before = log.head()
        with pytest.raises(ValueError, match="calibration"):
            _pass(log, sid, 0, bad)
        assert log.head() == before and log.passes(sid) == []
