"""Review 18 (records) finding 1: an export names who played each pass, and on what.

A session resumed by another technician on a new calibration: the passes after the
`session_resume` record were played by that technician on that calibration (and firmware,
envelope), and every export path (SQL JSONL, fast CSV, record by record) says so; `sessions
show` names the resumptions. Real SQLite, the real CLI; the first test plays the reviewer's
example end to end (jam, recalibrate, `smp run --resume S -t bob`)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import EXPORT_FIELDS, PassLog
from smpdevice.records import export as records_export
from smpdevice.records.export import ExportFilter
from tests.smpdevice import shell
from tests.smpdevice.records.test_passlog import SCREENING, T0, stats

ROOT = Path(__file__).resolve().parents[3]
PEN = "pensim://?clock=virtual&seed=7"


def _smp(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`smp ARGS` as a process would answer it, run in this process (tests/smpdevice/shell.py):
    seven `smp` processes were about 3 CPU-s of start-ups; no step here is about a process."""
    return shell.smp(args, env=env, cwd=ROOT)


def test_passes_of_a_resumed_part_are_exported_with_who_and_what_played_them(tmp_path):
    env = dict(os.environ, SMP_DATA_DIR=str(tmp_path / "data"),
               SMP_KEY_DIR=str(tmp_path / "key"), TMPDIR=str(tmp_path))
    env.pop("SMP_SERVICE", None)
    first = _smp(env, "calibrate", "--port", PEN, "--auto")
    cal_a = re.search(r"calibration (\w+) saved", first.stdout).group(1)
    run = _smp(env, "run", "examples/session1_base_density.yaml", "--port",
               PEN + "&faults=jam@5.06", "-t", "ana",
               "--screening", "examples/screening_clear.yaml")
    sid = re.search(r"Session (S[0-9a-f]{16})", run.stdout).group(1)
    second = _smp(env, "calibrate", "--port", PEN, "--auto")
    cal_b = re.search(r"calibration (\w+) saved", second.stdout).group(1)
    shell.wall_clock_past_opening(tmp_path / "data" / "passlog.sqlite", sid)  # (see there)
    resume = _smp(env, "run", "--resume", sid, "--port", PEN, "-t", "bob",
                  "--screening", "examples/screening_clear.yaml")
    assert resume.returncode == 0, resume.stdout + resume.stderr
    assert cal_a != cal_b
    out = _smp(env, "sessions", "export", "--format", "jsonl", "--identified", "--session", sid)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    shown = json.loads(_smp(env, "sessions", "show", sid, "--json").stdout)
    before = 2  # passes begun before the resume (the jam cut pass 2)
    assert len(rows) == shown["pass_count"] > before
    assert [(r["technician"], r["calibration_id"]) for r in rows[:before]] == [
        ("ana", cal_a)] * before
    resumed = rows[before:]
    assert [(r["technician"], r["calibration_id"]) for r in resumed] == [
        ("bob", cal_b)] * len(resumed), resumed
    (resumption,) = shown["resumptions"]
    assert (resumption["technician"], resumption["calibration_id"],
            resumption["first_pass"]) == ("bob", cal_b, before + 1)
    text = _smp(env, "sessions", "show", sid).stdout
    assert "resumed" in text and "bob" in text and cal_b in text, text


def _resume(log: PassLog, sid: str, minutes: int, **details) -> None:
    log.resume_session(sid, resumed_at=T0 + timedelta(minutes=minutes), details=details)


def _passes(log: PassLog, sid: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        pid = log.begin_pass(sid, index=i, zone="top", depth_mm=0.4, speed_hz=90.0,
                             duty_pct=40.0, period_ms=120.0,
                             started_at=T0 + timedelta(minutes=i))
        log.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)


def _log(tmp_path) -> tuple[Path, str, str]:
    """Two sessions beside each other: `sid` resumed twice (a count-only resumption between,
    which plays nothing), `other` never; their passes interleaved."""
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = log.open_session(technician="ana", client_ref="C-1", session_kind="base_density",
                               pen_serial="SMP-1", firmware_version="1.0", calibration_id="A",
                               profile_hash="h", screening=SCREENING, simulated=False)
        other = log.open_session(technician="zoe", client_ref="C-2",
                                 session_kind="base_density", pen_serial="SMP-1",
                                 firmware_version="1.0", calibration_id="A", profile_hash="h",
                                 screening=SCREENING, simulated=False)
        _passes(log, sid, 0, 2)
        _passes(log, other, 0, 1)
        _resume(log, sid, 10, number=1, passes_before=2, technician="bob",
                firmware_version="1.1", calibration_id="B", envelope_sha256="e" * 64)
        _passes(log, sid, 2, 1)
        _passes(log, other, 1, 1)
        _resume(log, sid, 20, count_only=True, technician="carl", passes_left=[])
        _passes(log, sid, 3, 1)
        # a name a spreadsheet would run: guarded in CSV as the opener's would be
        _resume(log, sid, 30, number=2, passes_before=4, technician="=cyd",
                firmware_version="1.2", calibration_id="C", envelope_sha256="f" * 64)
        _passes(log, sid, 4, 2)
    return db, sid, other


WANTED = [("ana", "1.0", "A", None)] * 2 + [("bob", "1.1", "B", "e" * 64)] * 2 + [
    ("=cyd", "1.2", "C", "f" * 64)] * 2


def _exported(db: Path, fmt: str, identified: bool, where=None) -> list[dict]:
    out = io.StringIO()
    with PassLog(db, readonly=True) as log:
        log.export(fmt, out, identified=identified, where=where)
    if fmt == "jsonl":
        return [json.loads(line) for line in out.getvalue().splitlines()]
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    return rows


def _who(rows: list[dict], sid: str) -> list[tuple]:
    return [(r["technician"], r["firmware_version"], r["calibration_id"],
             r["envelope_sha256"] or None) for r in rows if r["session_id"] == sid]


@pytest.mark.parametrize("sql", [True, False], ids=["sql", "record-by-record"])
def test_every_export_path_names_the_latest_resumption_before_each_pass(tmp_path, monkeypatch,
                                                                        sql):
    monkeypatch.setattr(records_export, "SQL_EXPORT", sql)
    db, sid, other = _log(tmp_path)
    jsonl = _exported(db, "jsonl", True)
    assert _who(jsonl, sid) == WANTED
    assert _who(jsonl, other) == [("zoe", "1.0", "A", None)] * 2
    assert [r["pass_number"] for r in jsonl if r["session_id"] == sid] == [1, 2, 3, 4, 5, 6]
    table = _exported(db, "csv", True)
    assert _who(table, sid) == [(("'" + t) if t.startswith("=") else t, f, c, e)
                                for t, f, c, e in WANTED]
    assert _who(table, other) == [("zoe", "1.0", "A", None)] * 2
    # pseudonyms: one per person, the resumer's own; the same in both formats
    names = [r["technician"] for r in _exported(db, "jsonl", False) if r["session_id"] == sid]
    assert len(set(names)) == 3 and names[0] == names[1] != names[2] == names[3] != names[4]
    assert all(n.startswith("~") for n in names)
    assert [r["technician"] for r in _exported(db, "csv", False)
            if r["session_id"] == sid] == names
    # a filtered export keeps each pass's resumption (and its number)
    window = ExportFilter(session=sid[:6], since=T0 + timedelta(minutes=3))
    for fmt in ("jsonl", "csv"):
        rows = _exported(db, fmt, True, window)
        assert [str(r["pass_number"]) for r in rows] == ["4", "5", "6"], fmt
        assert [r["calibration_id"] for r in rows] == ["B", "C", "C"], fmt


def test_a_damaged_resumption_is_named_before_any_row(tmp_path):
    import sqlite3

    db, _, _ = _log(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE records SET body = '[1]' WHERE kind = 'session_resume' AND "
                     "seq = (SELECT min(seq) FROM records WHERE kind = 'session_resume')")
    conn.close()
    for fmt in ("jsonl", "csv"):
        result = CliRunner().invoke(main, ["sessions", "export", "--db", str(db), "--format",
                                           fmt, "--identified"])
        assert result.exit_code == 3, result.output
        assert "malformed record" in result.output and "resumption" in result.output
        assert "C-1" not in result.output  # no row was written before it


def test_sessions_show_names_each_resumption(tmp_path):
    db, sid, _ = _log(tmp_path)
    shown = json.loads(CliRunner().invoke(main, ["sessions", "show", sid, "--db", str(db),
                                                 "--json"]).output)
    assert [(r["technician"], r["calibration_id"], r["first_pass"])
            for r in shown["resumptions"]] == [("bob", "B", 3), ("=cyd", "C", 5)]
    text = CliRunner().invoke(main, ["sessions", "show", sid, "--db", str(db)]).output
    assert "bob" in text and "=cyd" in text and "calibration C" in text, text
