"""Review 18 (cli): `--db ""` (a script's unset variable) was taken as the station's own store
by `smp calibrate`, `smp calibrations ...`, `smp sessions ...` and `smp replay`, where `smp run`
refuses it (README). A script's `smp sessions verify --db "$BACKUP"` with BACKUP unset checked
the station's log and said it was intact. Every --db now refuses '' and blanks (exit 2, one
line) before anything is opened."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from bench.passlog import fill  # noqa: E402 - the bench's own fast writer of a real log


@pytest.mark.parametrize("command", [
    ["calibrate", "--port", "pensim://?clock=virtual", "--auto", "-t", "ana"],
    ["calibrations", "list"], ["calibrations", "show", "abc"],
    ["calibrations", "import", str(ROOT / "examples" / "screening_clear.yaml")],
])
@pytest.mark.parametrize("typed", ["", "  "])
def test_an_empty_calibrations_db_is_refused_not_the_station_store(command, typed):
    data = Path(os.environ["SMP_DATA_DIR"])
    done = CliRunner().invoke(main, [*command, "--db", typed])
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert f"--db {typed!r}: no file was given" in done.output, done.output
    assert not (data / "calibrations.sqlite").exists(), done.output


@pytest.mark.parametrize("command", [
    ["sessions", "verify"], ["sessions", "list"], ["sessions", "show", "abc"],
    ["sessions", "export", "--format", "csv"], ["replay", "abc"],
    ["sessions", "sync", "--to", "postgresql://127.0.0.1:1/x"],
])
def test_an_empty_passlog_db_is_refused_not_the_station_log(command):
    data = Path(os.environ["SMP_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    fill(data / "passlog.sqlite", 10)  # the station's own log, there to be (wrongly) read
    done = CliRunner().invoke(main, [*command, "--db", ""])
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert "--db '': no file was given" in done.output, done.output
    assert "intact" not in done.output and "passes" not in done.output, done.output
