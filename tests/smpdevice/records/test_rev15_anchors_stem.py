"""Review 15 B2: two logs whose names share a stem shared one anchors file.

`signing.anchors_path` names the file by the stem, so `passlog.sqlite`, `passlog.db` and
`passlog` in one directory all used `passlog.anchors.jsonl`: a new `passlog.db` beside a station
log that had closed a session was refused as "missing, though its anchors file holds 1 receipt"
(it never existed), and two logs opened before either closed a session each failed verify
("record 4 differs from the receipt ... rewritten or replaced"). A new log whose anchors file
another pass log uses is now refused (`sqlite_schema.refuse_shared_anchors`, exit 2), one line
naming that log: nothing is created, and the other log's receipts stay its own.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.records.sqlite_schema import AnchorsFileRefused
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[3]
SCREENING = ROOT / "examples" / "screening_clear.yaml"


def _station(directory: Path, name: str = "passlog.sqlite", sessions: int = 1) -> Path:
    """A log with `sessions` closed sessions (a receipt each in its anchors file)."""
    db = directory / name
    with PassLog(db) as log:
        for _ in range(sessions):
            sid = log.open_session(technician="ana", client_ref="C-1", session_kind="x",
                                   pen_serial="SMP-1", firmware_version="1",
                                   calibration_id="c", profile_hash="h", screening={},
                                   simulated=True)
            log.close_session(sid, closed_at=datetime.now(UTC), summary={})
    return db


def _bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def _problem(db: Path) -> str | None:
    """What `verify` (with the anchors file beside `db`) finds wrong, or None."""
    with PassLog(db, readonly=True) as log:
        audit = log.audit(anchors=True)
    return None if audit.ok else f"{db.name}: {audit.problem}"


@pytest.mark.parametrize("sessions", [1, 0])  # with its receipt; opened, nothing anchored yet
@pytest.mark.parametrize("other", ["passlog.db", "passlog", "passlog.sqlite3", "empty"])
def test_a_new_log_of_the_same_stem_is_refused_naming_the_other(tmp_path, other, sessions):
    station = _station(tmp_path, sessions=sessions)
    anchors = _bytes(tmp_path / "passlog.anchors.jsonl")
    new = tmp_path / ("passlog.db" if other == "empty" else other)
    if other == "empty":
        new.write_bytes(b"")  # an empty file is a new log too
    with pytest.raises(AnchorsFileRefused, match=(
            f"the pass log {new} would share its anchors file {tmp_path}/passlog.anchors.jsonl "
            f"with the pass log {station} .*give this log another name")) as refused:
        PassLog(new)
    assert refused.value.exit_code == 2 and "\n" not in str(refused.value)
    made = [n for n in (new.name, *(new.name + s for s in ("-wal", "-shm", ".lock")))
            if (tmp_path / n).exists()]
    assert made == ([new.name] if other == "empty" else []), "nothing created beside it"
    assert _bytes(tmp_path / "passlog.anchors.jsonl") == anchors
    _station(tmp_path)  # the station's log still opens, records and verifies
    assert _problem(station) is None


def test_a_new_log_through_links_is_judged_where_its_file_is(tmp_path):
    data, other = tmp_path / "data", tmp_path / "other"
    data.mkdir()
    other.mkdir()
    station = _station(data)
    anchors = (data / "passlog.anchors.jsonl").read_bytes()
    (other / "passlog.db").symlink_to(data / "passlog.db")  # a link to a new log beside it
    with pytest.raises(AnchorsFileRefused, match=f"with the pass log {station}"):
        PassLog(other / "passlog.db")
    assert not (data / "passlog.db").exists()
    (data / "passlog.db").symlink_to(other / "elsewhere.sqlite")  # a new log elsewhere
    _station(data, "passlog.db")
    assert (other / "elsewhere.anchors.jsonl").stat().st_size > 0  # beside its own file
    assert (data / "passlog.anchors.jsonl").read_bytes() == anchors  # never taken from here
    os.link(station, data / "passlog.hard")  # a second name of the same log: the same log
    with PassLog(data / "passlog.hard") as same:
        assert len(same.sessions()) == 1
    for db in (station, other / "elsewhere.sqlite"):
        assert _problem(db) is None


def test_what_is_no_log_of_that_stem_refuses_nothing(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    _station(tmp_path / "elsewhere")  # the same stem in another directory: its own file
    (tmp_path / "passlog.csv").write_text("session_id\n")  # an export
    (tmp_path / "passlog.d").mkdir()
    os.mkfifo(tmp_path / "passlog.fifo")  # never opened (it would block)
    (tmp_path / "passlog.broken").symlink_to(tmp_path / "gone.sqlite")
    with sqlite3.connect(tmp_path / "passlog.other") as conn:  # another program's database
        conn.execute("CREATE TABLE notes (text)")
    conn.close()
    db = _station(tmp_path)
    assert _problem(db) is None
    assert _problem(tmp_path / "elsewhere" / "passlog.sqlite") is None


def test_smp_run_on_a_new_log_of_the_same_stem_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    model = PenModel(seed=0)
    CalibrationStore(tmp_path / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    station = _station(tmp_path)
    result = CliRunner().invoke(main, [
        "run", str(ROOT / "examples" / "session1_base_density.yaml"), "-t", "ana",
        "--screening", str(SCREENING), "--port", "pensim://", "--db",
        str(tmp_path / "passlog.db")])
    assert result.exit_code == 2, result.output
    assert f"would share its anchors file {tmp_path}/passlog.anchors.jsonl with the pass log " \
           f"{station}" in result.output, result.output
    assert "missing" not in result.output and not (tmp_path / "passlog.db").exists()


def test_a_reader_of_a_new_name_is_not_told_the_other_logs_receipts_are_its_own(tmp_path):
    """`smp sessions list --db passlog.db` beside a station log with receipts: that log never
    was, so it is not "missing ... restore it" (the receipts are passlog.sqlite's)."""
    _station(tmp_path)
    done = CliRunner().invoke(main, ["sessions", "list", "--db", str(tmp_path / "passlog.db")])
    assert "missing" not in done.output and "restore" not in done.output, done.output
    assert "no pass log at" in done.output, done.output
