"""Review 11 (REVA F4, F16): a wrong --db is refused as it is; one unreadable log of the data
directory hides none of the others.

F4: README "A `--db` or `--calibrations` that is a file but no database ... is refused as it
is: no lock file made, its mode left alone." An SQLite database that is no pass log (the
calibrations, any other program's) given as a pass log's --db was locked (`.lock` left
beside it), made 0600, and refused with exit 3; a read-only command left a `-wal` and a `-shm`
beside it. Now every command that takes a pass log's --db refuses it with exit 2 and leaves
the file, its mode and its directory as they were.

F16: docs/integration.md "Two chairs on one PC": without --db, `smp sessions list|show|
export|verify|sync` read every log of the data directory as one. A damaged or stray
`passlog-*.sqlite` made `list`, `show`, `export` and `sync` show or sync none of them (and
blamed a --db never given). Now it is named in one warning line and left out, the others are
read, and the command exits 3 (README: the pass log cannot be read).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

REPO = Path(__file__).resolve().parents[3]
PROFILE = str(REPO / "examples" / "session1_base_density.yaml")
SCREENING = str(REPO / "examples" / "screening_clear.yaml")


def smp(*args: str) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"SMP_SIM_CLOCK": "virtual"})


def foreign_database(folder: Path) -> Path:
    """Another program's SQLite database (WAL mode, 0644), as the calibrations are."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "calibrations.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE calibrations (pen_serial TEXT, record_json TEXT)")
        conn.execute("INSERT INTO calibrations VALUES ('SMP-1', '{}')")
    conn.close()
    path.chmod(0o644)
    return path


def as_found(path: Path) -> tuple[list[str], int, str]:
    """What a refusal must leave as it was: the folder's files, the mode, the bytes."""
    return (sorted(os.listdir(path.parent)), stat.S_IMODE(path.stat().st_mode),
            hashlib.sha256(path.read_bytes()).hexdigest())


DB_COMMANDS = {
    "run": ["run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING],
    "resume": ["run", "--resume", "S0123456789abcdef", "--port", "pensim://", "-t", "ana"],
    "list": ["sessions", "list"],
    "show": ["sessions", "show", "S01"],
    "export": ["sessions", "export", "--format", "jsonl"],
    "verify": ["sessions", "verify"],
    "replay": ["replay", "S01"],
}


@pytest.mark.parametrize("command", sorted(DB_COMMANDS))
def test_a_database_that_is_no_pass_log_given_as_db_is_refused_as_it_is(tmp_path, command):
    other = foreign_database(tmp_path / "elsewhere")
    before = as_found(other)
    result = smp(*DB_COMMANDS[command], "--db", other)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "is an SQLite file but not a pass log" in result.stderr
    assert "nothing was changed" in result.stderr
    assert as_found(other) == before  # no .lock, -wal or -shm beside it; 0644; same bytes


@pytest.mark.parametrize("readonly", [False, True])
def test_the_pass_log_api_refuses_another_database_before_touching_it(tmp_path, readonly):
    from smpdevice.records.sqlite_file import NotAPassLog

    other = foreign_database(tmp_path)
    before = as_found(other)
    with pytest.raises(NotAPassLog, match="SQLite file but not a pass log") as refused:
        PassLog(other, readonly=readonly)
    assert refused.value.exit_code == 2
    assert as_found(other) == before


def test_a_file_that_is_no_sqlite_database_is_refused_untouched(tmp_path):
    """Not through --db (which refuses it earlier): the station's own path, say."""
    from smpdevice.records.model import PassLogError

    notes = tmp_path / "passlog.sqlite"
    notes.write_text("notes typed in the wrong place\n" * 20)
    notes.chmod(0o644)
    before = as_found(notes)
    for readonly in (False, True):
        with pytest.raises(PassLogError, match="not a pass log or is damaged"):
            PassLog(notes, readonly=readonly)
    assert as_found(notes) == before


def test_a_pass_log_is_still_opened_written_and_read(tmp_path):
    """The look before the lock changes nothing for a real log, new or existing, or empty."""
    db = tmp_path / "passlog.sqlite"
    db.touch()  # an empty file is a new log
    with PassLog(db) as log:
        sid = open_session(log)
    with PassLog(db) as log:
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    with PassLog(db, readonly=True) as log:
        assert [p.outcome for p in log.session(sid).passes] == ["completed"]


# --- F16 -----------------------------------------------------------------------------------


def station_with_a_session() -> tuple[Path, str]:
    data = Path(os.environ["SMP_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    station = data / "passlog.sqlite"
    with PassLog(station) as log:
        sid = open_session(log, "C-0042")
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    return station, sid


def damaged(kind: str, station: Path) -> Path:
    """A damaged copy of a log (a cut copy) or a stray text file named like a pen's log."""
    if kind == "cut":
        path = station.with_name("passlog-SMP-CUT.sqlite")
        path.write_bytes(station.read_bytes()[:9000])
    else:
        path = station.with_name("passlog-SMP-FAKE.sqlite")
        path.write_text("not a log\n" * 50)
    return path


def warned_once(result: Result, path: Path, says: str = "left out") -> None:
    """One warning line naming the file and why, never blaming a --db that was not given."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("warning: ") and str(path) in lines[0]
    assert says in lines[0] and "--db" not in lines[0].split("check it")[0]


@pytest.mark.parametrize("kind", ["cut", "stray"])
def test_one_unreadable_log_hides_none_of_the_others(kind):
    station, sid = station_with_a_session()
    bad = damaged(kind, station)
    listed = smp("sessions", "list", "--json")
    assert listed.exit_code == 3, listed.output
    assert [s["session_id"] for s in json.loads(listed.stdout)] == [sid]
    warned_once(listed, bad)
    table = smp("sessions", "list")
    assert table.exit_code == 3 and sid in table.stdout
    exported = smp("sessions", "export", "--format", "jsonl")
    assert exported.exit_code == 3, exported.output
    assert [json.loads(line)["session_id"] for line in exported.stdout.splitlines()] == [sid]
    warned_once(exported, bad)
    shown = smp("sessions", "show", sid[:6])
    assert shown.exit_code == 3 and sid in shown.stdout
    warned_once(shown, bad)


@pytest.mark.parametrize("kind", ["cut", "stray"])
def test_verify_checks_the_other_logs_and_exits_3(kind):
    station, _ = station_with_a_session()
    bad = damaged(kind, station)
    verified = smp("sessions", "verify")
    assert verified.exit_code == 3, verified.output
    lines = verified.stdout.splitlines()
    assert lines[lines.index(f"{station}:") + 1].startswith("ok: ")
    named = lines[lines.index(f"{bad}:") + 1]
    assert named.startswith("not checked: ") and str(bad) in named and "--db" not in named


def test_a_session_not_found_beside_an_unreadable_log_says_where_it_may_be():
    station, _ = station_with_a_session()
    damaged("cut", station)
    shown = smp("sessions", "show", "Sffffffffffffffff")
    assert shown.exit_code == 3, shown.output
    assert "may be in a log that could not be read" in shown.stderr


def test_the_only_log_unreadable_is_still_the_one_error():
    """Nothing else to show: the log's own error, as before (no table of 0 sessions)."""
    data = Path(os.environ["SMP_DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    (data / "passlog.sqlite").write_text("not a log\n" * 50)
    listed = smp("sessions", "list")
    assert listed.exit_code == 3
    assert listed.stderr.startswith("error: ") and "not a pass log or is damaged" in listed.stderr
    assert "sessions" not in listed.stdout


def test_given_db_unreadable_is_refused_as_before(tmp_path):
    cut = tmp_path / "passlog.sqlite"
    cut.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    listed = smp("sessions", "list", "--db", cut)
    assert listed.exit_code == 3 and listed.stderr.startswith("error: "), listed.output


def test_sync_syncs_the_readable_logs_and_exits_3(url):
    station, _ = station_with_a_session()
    bad = damaged("stray", station)
    synced = smp("sessions", "sync", "--to", url)
    assert synced.exit_code == 3, synced.output
    assert "synced log " in synced.stdout
    warned_once(synced, bad, says="Not synced")
