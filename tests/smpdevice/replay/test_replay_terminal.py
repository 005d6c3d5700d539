"""`smp replay` shows its verdict, not the replayed controller's log lines: they say again what
the recorded run said (here the jam's fault; in a starved fresh-clone run, a lease that lapsed
live: "error: could not stop the needle" above a `match`), which on the terminal reads as news
about the pen at hand. They still go to smp.log."""
from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SCREENING,
    calibrate_default_pen,
    data_dir,
    short_profile,
)
from tests.smpdevice.replay.test_replay_faults import jammed  # noqa: F401 - a fixture


def test_the_replayed_fault_goes_to_smp_log_not_the_terminal(jammed, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMP_LOG_LEVEL", "warning")
    log_file = Path(os.environ["SMP_DATA_DIR"]) / "smp.log"
    before = log_file.read_text().splitlines() if log_file.exists() else []
    replay = CliRunner().invoke(main, ["replay", "last"])
    assert replay.exit_code == 0, replay.output
    lines = replay.output.splitlines()
    assert [line.split(":")[0] for line in lines] == ["note", "match"], replay.output
    replayed = [json.loads(line) for line in log_file.read_text().splitlines()[len(before):]]
    faults = [e for e in replayed if e.get("event") == "fault"]
    assert faults and all(e["level"] == "warning" for e in faults), replayed[-5:]


def test_the_live_run_still_says_its_fault_on_the_terminal(data_dir, tmp_path,  # noqa: F811
                                                            monkeypatch):
    """Muting is the replay's alone: `smp run` of the same jam says it."""
    monkeypatch.setenv("SMP_LOG_LEVEL", "warning")
    calibrate_default_pen(data_dir)
    ran = CliRunner().invoke(main, ["run", str(short_profile(tmp_path, "3.0")), "-t", "ana",
                                    "--screening", str(SCREENING),
                                    "--port", "pensim://?faults=jam@1.5&clock=virtual"])
    assert ran.exit_code == 4, ran.output
    assert "warning: fault" in ran.output, ran.output
