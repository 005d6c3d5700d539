"""Run the real `smp` in a child process on a fresh station (its own data and key directories,
no station config), pens on virtual time: the review-14 CLI tests (test_rev14_*.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.smpdevice.shell import calibrated
from tests.smpdevice.shell import smp as shell_smp

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PORT = "pensim://?clock=virtual"
PROFILE = EXAMPLES / "session1_base_density.yaml"
SCREENING = EXAMPLES / "screening_clear.yaml"
SMP = (sys.executable, "-m", "smpdevice")


def station_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh station under `tmp_path` (never the home data directory)."""
    env = dict(os.environ)
    for name in ("SMP_PORT", "SMP_SERVICE", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH"):
        env.pop(name, None)
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "keys").mkdir(exist_ok=True)
    env.update(SMP_DATA_DIR=str(tmp_path / "data"), SMP_KEY_DIR=str(tmp_path / "keys"),
               SMP_CONFIG=str(tmp_path / "no-config.toml"), SMP_SIM_CLOCK="virtual")
    return env


def smp(env: dict[str, str], *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SMP, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout_s, check=False)


def run_args(port: str = PORT) -> list[str]:
    """`smp run` of the example profile with a screening that passes, technician ana."""
    return ["run", str(PROFILE), "--port", port, "-t", "ana", "--screening", str(SCREENING)]


def calibrate_here(env: dict[str, str]) -> None:
    """Fill the (empty) data directory of `env` with what `smp calibrate --port PORT --auto`
    saves: a set-up step, not the command under test, so in this process and once per worker
    (tests/smpdevice/shell.py `calibrated`), not a child process of about 1 CPU-s per test."""
    data = Path(env["SMP_DATA_DIR"])
    data.rmdir()
    calibrated(data, PORT)


def smp_here(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`smp ARGS` in this process with `env` as its whole environment (shell.py `smp`): for
    set-up steps and commands whose process is not what the test checks."""
    return shell_smp(args, env=env)


def calibrate(env: dict[str, str], port: str = PORT) -> None:
    cal = smp(env, "calibrate", "--port", port, "--auto", "-t", "ana")
    assert cal.returncode == 0, cal.stderr
