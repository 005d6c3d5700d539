"""bench/faults.py's command line runs (session 21: it stopped before any scenario, on a log
level `smpdevice.logs.configure` refuses). The scenarios themselves: tests/test_campaign.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FAULTS = Path(__file__).resolve().parent.parent / "bench" / "faults.py"


def test_the_fault_campaign_runs_from_its_command_line(tmp_path):
    done = subprocess.run([sys.executable, str(FAULTS), "--quick", "fuzz"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| fuzz | 20,000 | PASS |" in done.stdout, done.stdout[-2000:]
