"""Review 18c (2): `smp calibrate` whose save a lock refused printed the import command with
--db as typed (relative) and no --db at all for a store found through SMP_DATA_DIR: run later
from another directory, or without that variable, it made a new database there, saved the
calibration into it and removed the kept file. Now the file and the store are printed as
absolute paths, always (shell-quoted). A real run on a virtual-clock simulated pen; another
program's SQLite lock taken at the last verify reading."""

from __future__ import annotations

import os
import re
import shlex

import pytest
from click.testing import CliRunner

from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from tests.smpdevice.cli.locked_calibration import calibrate_locked


@pytest.mark.parametrize("where", ["--db relative", "SMP_DATA_DIR relative"])
def test_the_printed_import_saves_to_the_runs_database_from_any_directory(tmp_path,
                                                                         monkeypatch, where):
    station, elsewhere = tmp_path / "station dir", tmp_path / "elsewhere"
    station.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(station)
    if where == "--db relative":
        monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
        db, words = station / "cal.sqlite", ["--db", "cal.sqlite"]
    else:  # set for the calibrate command only
        monkeypatch.setenv("SMP_DATA_DIR", "data")
        (station / "data").mkdir(mode=0o700)
        db, words = station / "data" / "calibrations.sqlite", []
    run = calibrate_locked(monkeypatch, db, *words)
    assert run.exit_code == 3, run.output[-600:]
    printed = re.search(r"save it: (smp calibrations import .*?) \(or calibrate", run.output,
                        re.S)
    assert printed, run.output[-600:]
    args = shlex.split(printed.group(1))[1:]
    assert os.path.isabs(args[2]) and args[args.index("--db") + 1] == str(db), args
    monkeypatch.chdir(elsewhere)  # later, from another directory, another data directory
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "other-data"))
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    assert len(CalibrationStore(db, readonly=True).list()) == 1, (printed.group(1), done.output)
    assert sorted(p.name for p in elsewhere.iterdir()) == []
    assert not (tmp_path / "other-data" / "calibrations.sqlite").exists()
