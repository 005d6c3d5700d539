"""Review 12 (REVD-12, REVG-3): the calibration store given the wrong file, and on a read-only
disk.

README: a `--db` that is another kind of SQLite database is refused (exit 2), by the readers as
by `smp calibrate`. README "Exit status" 3: the pass log cannot be read or written; a station
whose disk went read-only says so, not that the calibrations "failed ... nothing was saved".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[3]
SCREENING = ROOT / "examples" / "screening_clear.yaml"
PROFILE = ROOT / "examples" / "session1_base_density.yaml"


def _calibration(serial: str) -> Calibration:
    return Calibration.linear(pen_serial=serial, technician="ana", offset_mm=0.0, gain=1.0,
                              **fit_points(0.0, 1.0))


@pytest.mark.parametrize("command", [["calibrations", "list"],
                                     ["calibrations", "show", "0123456789ab"]])
def test_a_reader_refuses_a_pass_log_as_its_calibrations(tmp_path, command):
    passlog = tmp_path / "passlog.sqlite"
    with PassLog(passlog):
        pass
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, [*command, "--db", str(passlog)])
    assert result.exit_code == 2, result.output
    assert "is an SQLite file but not a calibration database" in result.output
    assert "No calibrations" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made beside it


def test_a_new_or_empty_database_is_still_no_calibrations(tmp_path):
    empty = tmp_path / "calibrations.sqlite"
    empty.write_bytes(b"")
    assert CalibrationStore(empty, readonly=True).list() == []
    assert CalibrationStore(tmp_path / "absent.sqlite", readonly=True).list() == []


@contextlib.contextmanager
def _read_only_copy(of: Path, base: Path) -> Iterator[Path]:
    """`of` bind-mounted read-only (a disk remounted ro after an error); root only."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    where = base / f"ro-{uuid.uuid4().hex[:8]}"
    where.mkdir()
    if subprocess.run(["mount", "--bind", str(of), str(where)],
                      capture_output=True).returncode != 0:
        pytest.skip("no bind mounts here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(where)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_writer_store_reads_a_current_file_on_a_read_only_disk(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    CalibrationStore(data / "calibrations.sqlite").save(_calibration("PEN-1"))
    with _read_only_copy(data, tmp_path) as ro:
        store = CalibrationStore(ro / "calibrations.sqlite")  # as `smp run` opens it
        assert store.latest("PEN-1") is not None
        with pytest.raises(CalibrationStoreError, match="nothing was saved|cannot open"):
            store.save(_calibration("PEN-2"))  # a save on it still fails, said
        with pytest.raises(CalibrationStoreError):  # what `smp calibrate` asks before the pen
            store.require_writable()              # moves


def test_run_on_a_read_only_data_directory_is_exit_3_read_only(tmp_path, monkeypatch):
    """The needle never starts; the line names the pass log and says read-only."""
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(data, 0o755)  # a directory the writer would tighten: re-moding it fails too
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="t", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE.read_text().replace("duration_s: 3", "duration_s: 0.3")
                       .replace("duration_s: 2", "duration_s: 0.3"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    with _read_only_copy(data, tmp_path) as ro:
        monkeypatch.setenv("SMP_DATA_DIR", str(ro))
        result = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                           str(SCREENING), "--port", "pensim://"])
        assert sorted(p.name for p in ro.iterdir()) == ["calibrations.sqlite"]
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 3, result.output
    assert len(errors) == 1 and "pass log" in errors[0] and "read-only" in errors[0].lower(), errors
    assert "cannot create" not in errors[0] and "nothing was saved" not in errors[0]
    shutil.rmtree(data)


def test_calibrate_on_a_read_only_disk_fails_before_the_pen_moves(tmp_path, monkeypatch):
    """`smp calibrate` asks its store to be writable first (it used to find out at the save,
    after the whole calibration): one line, exit 2, and the pen never armed."""
    data = tmp_path / "data"
    data.mkdir()
    CalibrationStore(data / "calibrations.sqlite").save(_calibration("PEN-1"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    with _read_only_copy(data, tmp_path) as ro:
        result = CliRunner().invoke(main, ["calibrate", "--port", "pensim://", "--auto", "-t",
                                           "ana", "--db", str(ro / "calibrations.sqlite")])
    assert result.exit_code == 2, result.output
    assert "read-only" in result.output.lower(), result.output
    assert "Result:" not in result.output and "zero" not in result.output.lower(), result.output
