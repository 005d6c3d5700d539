"""The review-16 QA tests' station: `smp` in-process (tests/smpdevice/shell.py) on a copy of a
calibrated data directory, the simulated pen on virtual time (no mocks; real SQLite and
recordings)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.smpdevice.shell import calibrated
from tests.smpdevice.shell import smp as smp_in_process

REPO = Path(__file__).resolve().parents[3]
PROFILE = str(REPO / "examples" / "session1_base_density.yaml")
SCREENING = str(REPO / "examples" / "screening_clear.yaml")


def station(data_dir: Path) -> Path:
    """A data directory whose simulated pen (seed 0) is calibrated."""
    return calibrated(data_dir)


def smp(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    env.update(SMP_DATA_DIR=str(data_dir), SMP_KEY_DIR=str(data_dir.parent / "keys"),
               SMP_CONFIG=str(data_dir.parent / "none.toml"), SMP_SIM_CLOCK="virtual")
    return smp_in_process(list(args), env=env, cwd=REPO, input="")


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def run_session(data_dir: Path, faults: str, *resume: str) -> subprocess.CompletedProcess:
    port = f"pensim://?clock=virtual&faults={faults}"
    head = ["run", "--resume", *resume] if resume else ["run", PROFILE]
    return smp(data_dir, *head, "--port", port, "-t", "ana", "--screening", SCREENING)


def last_session_id(data_dir: Path) -> str:
    listing = smp(data_dir, "sessions", "list", "--json")
    assert listing.returncode == 0, out(listing)
    return str(json.loads(listing.stdout)[-1]["session_id"])
