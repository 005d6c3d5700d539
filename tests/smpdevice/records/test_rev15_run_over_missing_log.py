"""Review 15 F4: `smp run` started a new log where every reader says "missing: restore it".

With the station's log moved away (a copy to a backup drive, a restore in progress) and its
anchors file left with its receipts, `smp sessions list/show/export` refuse (exit 3) and
`verify` says `missing` (exit 1): "the log was deleted or moved; restore it". `smp run` meanwhile
creates a fresh log in its place and appends the new session's receipt to the OLD log's anchors
file. Restore the original log as told, and `smp sessions verify` fails on a genuine log
("record N differs from the receipt of session ...: the log was rewritten or replaced", exit 1),
while the new session sits in a file that the restore pushed aside. A writer now refuses to
create a log (nothing there, or an empty file) beside an anchors file that holds receipts or
cannot be read (`sqlite_schema.refuse_new_log`, exit 3): nothing is created or written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.records.model import PassLogError
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "examples" / "session1_base_density.yaml"
SCREENING = ROOT / "examples" / "screening_clear.yaml"


def _short_profile(tmp_path: Path) -> Path:
    text = PROFILE.read_text().replace("duration_s: 3", "duration_s: 0.3")
    text = text.replace("duration_s: 2", "duration_s: 0.3").replace("impressions: 25",
                                                                     "impressions: 3")
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path


def _run(profile: Path) -> str:
    result = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                       str(SCREENING), "--port", "pensim://"])
    assert result.exit_code in (0, 3), result.output
    return result.output


def test_a_run_never_leaves_the_restored_log_failing_verify(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    profile = _short_profile(tmp_path)
    _run(profile)
    assert CliRunner().invoke(main, ["sessions", "verify"]).exit_code == 0

    away = tmp_path / "backup-drive"  # the log moved away; its anchors file left
    away.mkdir()
    for name in ("passlog.sqlite", "passlog.sqlite-wal", "passlog.sqlite-shm",
                 "passlog.sqlite.lock"):
        if (data / name).exists():
            shutil.move(data / name, away / name)
    listed = CliRunner().invoke(main, ["sessions", "list"])
    assert listed.exit_code == 3 and "missing" in listed.output, listed.output

    refused = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                        str(SCREENING), "--port", "pensim://"])
    assert refused.exit_code == 3 and "restore it from a backup" in refused.output, \
        refused.output
    assert not (data / "passlog.sqlite").exists(), "nothing is created in its place"

    for name in ("passlog.sqlite", "passlog.sqlite-wal", "passlog.sqlite-shm"):
        (data / name).unlink(missing_ok=True)  # restore the original, as the readers said
        if (away / name).exists():
            shutil.copy2(away / name, data / name)
    restored = CliRunner().invoke(main, ["sessions", "verify"])
    assert restored.exit_code == 0, restored.output


@pytest.mark.parametrize("anchors", [
    b'{"damaged": \n',  # cannot be read: a reader says "missing" too
    None,  # receipts of a closed session, as a close wrote them
])
@pytest.mark.parametrize("log", ["absent", "empty"])
def test_a_writer_creates_no_log_beside_receipts_of_a_gone_one(tmp_path, anchors, log):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as first:
        sid = first.open_session(technician="ana", client_ref="C-1", session_kind="x",
                                 pen_serial="SMP-1", firmware_version="1", calibration_id="c",
                                 profile_hash="h", screening={}, simulated=True)
        first.close_session(sid, closed_at=first_time(), summary={})
    receipts = (tmp_path / "passlog.anchors.jsonl").read_bytes()
    (tmp_path / "passlog.anchors.jsonl").write_bytes(anchors or receipts)
    for name in ("passlog.sqlite", "passlog.sqlite-wal", "passlog.sqlite-shm",
                 "passlog.sqlite.lock"):
        (tmp_path / name).unlink(missing_ok=True)
    if log == "empty":
        db.write_bytes(b"")
    with pytest.raises(PassLogError, match=f"is {'missing' if log == 'absent' else 'empty'}, "
                                           "though its anchors file"):
        PassLog(db)
    if log == "empty":
        assert db.read_bytes() == b"", "the empty file is left as it was"
    else:
        assert not db.exists() and not (tmp_path / "passlog.sqlite.lock").exists()
    assert (tmp_path / "passlog.anchors.jsonl").read_bytes() == (anchors or receipts)


def test_a_new_log_beside_an_empty_anchors_file_is_created(tmp_path):
    (tmp_path / "passlog.anchors.jsonl").write_bytes(b"")  # no session was ever anchored
    with PassLog(tmp_path / "passlog.sqlite") as log:
        assert log.sessions() == []


def first_time():
    from datetime import UTC, datetime

    return datetime.now(UTC)
