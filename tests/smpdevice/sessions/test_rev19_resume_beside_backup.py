"""`smp run --resume SESSION` without --db reads two files holding one log (a stale backup left
beside it, a link to it) once, as `smp sessions` does: it resumes on the log written on, names
the copy in a warning, and records nothing in the copy (review 19, fix 3).

Promised: docs/integration.md ("Two files holding one log ..."): "... `smp run --resume
SESSION` without `--db` ... read every pass log of the data directory as one ... a backup left
beside it, or a link ... are read once ... never a stale backup".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from smpdevice.records.keys import InstallationKey
from smpdevice.sessions.resume import ResumeError, find_session_log
from tests.smpdevice.records._rev18_station import add_session, station
from tests.smpdevice.records.test_passlog import open_session
from tests.smpdevice.shell import calibrated, smp, wall_clock_past_opening

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PORT = "pensim://?clock=virtual"
SCREENING = ["--screening", str(EXAMPLES / "screening_clear.yaml")]
RUN = ["run", str(EXAMPLES / "session1_base_density.yaml"), "-t", "ana", *SCREENING]


def _station(tmp_path: Path) -> dict[str, str]:
    data = calibrated(tmp_path / "data", PORT)
    (tmp_path / "keys").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMP_")}
    return {**env, "SMP_DATA_DIR": str(data), "SMP_KEY_DIR": str(tmp_path / "keys"),
            "SMP_CONFIG": str(tmp_path / "no-config.toml"), "NO_COLOR": "1"}


def _left_open(env: dict[str, str]) -> str:
    """A session left open by a jam (exit 4); its id."""
    run = smp([*RUN, "--port", PORT + "&faults=jam@8-9"], env=env)
    assert run.returncode == 4, run.stdout + run.stderr
    return next(w for w in run.stdout.split() if w.startswith("S") and len(w) == 17)


def _resumptions(path: Path, sid: str) -> int:
    with PassLog(path, readonly=True) as log:
        return len(log.resumptions(sid))


def test_resume_reads_a_stale_backup_and_a_link_once(tmp_path: Path) -> None:
    env = _station(tmp_path)
    data = Path(env["SMP_DATA_DIR"])
    sid = _left_open(env)
    shutil.copy2(data / "passlog.sqlite", tmp_path / "backup.sqlite")  # taken now
    grow = smp([*RUN, "--port", PORT], env=env)  # the station's log records on (signed)
    assert grow.returncode == 0, grow.stdout + grow.stderr
    shutil.copy2(tmp_path / "backup.sqlite", data / "passlog-backup.sqlite")
    (data / "passlog-link.sqlite").symlink_to(data / "passlog.sqlite")
    listed = smp(["sessions", "list"], env=env)
    assert listed.returncode == 0 and "older copy" in listed.stderr, listed.stderr
    wall_clock_past_opening(data / "passlog.sqlite", sid)
    resumed = smp(["run", "--resume", sid[:8], "--port", PORT, "-t", "ana", *SCREENING],
                  env=env)
    assert "several pass logs" not in resumed.stderr, resumed.stderr
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "passlog-backup.sqlite" in resumed.stderr and "warning:" in resumed.stderr
    assert _resumptions(data / "passlog.sqlite", sid) == 1  # on the log written on
    assert _resumptions(data / "passlog-backup.sqlite", sid) == 0  # the backup untouched


def test_the_log_written_on_is_taken_whichever_comes_first(tmp_path, monkeypatch) -> None:
    """The rule, not the names: a stale backup listed first is still not the one resumed."""
    log_path = station(tmp_path, monkeypatch, sessions=1)
    key = InstallationKey.load_or_create()
    with PassLog(log_path, key=key) as log:
        sid = open_session(log)  # left open
    taken = tmp_path / "taken.sqlite"  # a backup taken now (out of the data directory: the
    shutil.copy2(log_path, taken)  # writer refuses to write beside a copy of the same records)
    with PassLog(log_path, key=key) as log:
        add_session(log)  # recorded on, its head signed
    backup = log_path.with_name("passlog-a-backup.sqlite")  # then left beside it
    shutil.copy2(taken, backup)
    said: list[str] = []
    for paths in ([backup, log_path], [log_path, backup]):
        assert find_session_log(paths, sid, where="w", warn=said.append) == log_path
        assert find_session_log(paths, sid[:6], where="w", warn=said.append) == log_path
    assert said and all("older copy" in line and str(backup) in line for line in said)
    with PassLog(taken, key=key) as log:  # each written after the copy: both read, so
        add_session(log)  # which one is meant cannot be told (a prefix alike)
    shutil.copy2(taken, backup)
    for given in (sid, sid[:6]):
        with pytest.raises(ResumeError, match=f"session {sid} is in several pass logs"):
            find_session_log([log_path, backup], given, where="w", warn=said.append)
