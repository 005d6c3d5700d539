"""`smp run PROFILE --rescreen-after-min nan` (or `abc`, `-5`, `inf`) was ignored without
--resume: the session played and the run exited 0. A bad value is refused when the command
line is read (exit 2, nothing opened), with --resume or not; a good one is no error
(SMP_RESCREEN_AFTER_MIN may be set for every run). Review 17."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]


def _run(tmp_path, *, option: str | None = None, env_value: str | None = None):
    data = shell.calibrated(tmp_path / "data")
    env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_KEY_DIR": str(tmp_path / "keys"),
           "SMP_CONFIG": str(tmp_path / "none.toml")}
    env.pop("SMP_RESCREEN_AFTER_MIN", None)
    if env_value is not None:
        env["SMP_RESCREEN_AFTER_MIN"] = env_value
    extra = ("--rescreen-after-min", option) if option is not None else ()
    run = shell.smp(("run", "examples/session1_base_density.yaml", "--port",
                     "pensim://?clock=virtual", "-t", "ana", "--screening",
                     "examples/screening_clear.yaml", *extra), env=env, cwd=ROOT)
    log, sessions = data / "passlog.sqlite", []
    if log.exists():
        with PassLog(log, readonly=True) as passlog:
            sessions = passlog.sessions()
    return run, sessions


@pytest.mark.parametrize("minutes", ["nan", "abc", "-5", "inf", "481", ""])
def test_run_refuses_a_bad_rescreen_after_min(tmp_path, minutes):
    run, sessions = _run(tmp_path, option=minutes)
    assert run.returncode == 2, (run.returncode, run.stderr[-300:])
    assert "rescreen_after_min" in run.stderr and "Traceback" not in run.stderr
    assert sessions == [], "a session was opened and played despite the bad option"


def test_a_bad_value_in_the_environment_is_refused_too(tmp_path):
    run, sessions = _run(tmp_path, env_value="nan")
    assert run.returncode == 2 and "rescreen_after_min" in run.stderr, run.stderr[-300:]
    assert sessions == []


def test_a_good_value_without_resume_plays_the_session(tmp_path):
    run, sessions = _run(tmp_path, env_value="45")
    assert run.returncode == 0, run.stderr[-300:]
    assert len(sessions) == 1
