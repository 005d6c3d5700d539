"""REV2B R4: a --db that cannot be looked at (another program's rollback-journal database,
held locked by that program) is refused as it is: no `.lock` beside it, its mode left alone,
one line saying another program is using it and to try again. Before, the look's "busy" let
the writer open go on: `inventory.sqlite.lock` made, 0644 -> 0600, then exit 3 "database is
locked". A pass log of ours that another writer is writing (WAL) is still read, and a second
writer still gets "in use" (the other chair's log), not this refusal."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records import readonly
from smpdevice.records.model import PassLogError
from tests.smpdevice.records.test_passlog import open_session

REPO = Path(__file__).resolve().parents[3]
PROFILE = str(REPO / "examples" / "session1_base_density.yaml")
SCREENING = str(REPO / "examples" / "screening_clear.yaml")
BUSY = "another program is using it"
# The lock is held for the whole test: any wait ends refused, so a short one is as certain as
# the product's 5 s (readonly.BUSY_WAIT_S, read at each open).
SHORT_BUSY_WAIT_S = 0.2


def smp(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env={"SMP_SIM_CLOCK": "virtual"})


def as_found(path: Path) -> tuple[list[str], int, str]:
    return (sorted(os.listdir(path.parent)), stat.S_IMODE(path.stat().st_mode),
            hashlib.sha256(path.read_bytes()).hexdigest())


@pytest.fixture
def busy_foreign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Another program's rollback-journal database, 0644, that program writing it right now."""
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", SHORT_BUSY_WAIT_S)
    path = tmp_path / "inventory.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE stock(item)")
    path.chmod(0o644)
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("INSERT INTO stock VALUES ('ink')")
    try:
        yield path
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_smp_run_refuses_a_busy_foreign_db_untouched(busy_foreign):
    assert smp("calibrate", "--port", "pensim://", "--auto").exit_code == 0
    before = as_found(busy_foreign)
    result = smp("run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING,
                 "--db", busy_foreign)
    assert result.exit_code == 3, result.output
    assert as_found(busy_foreign)[:2] == before[:2]  # no .lock/-wal beside it; still 0644
    (line,) = result.stderr.splitlines()
    assert BUSY in line and "nothing was changed" in line and "Try again" in line, line
    assert "Session" not in result.stdout  # refused before the pen was reached


def test_sessions_list_refuses_a_busy_foreign_db_untouched(busy_foreign):
    before = as_found(busy_foreign)
    result = smp("sessions", "list", "--db", busy_foreign)
    assert result.exit_code == 3, result.output
    assert BUSY in result.stderr, result.output
    assert as_found(busy_foreign)[:2] == before[:2]


def test_the_pass_log_api_refuses_a_busy_foreign_file_before_locking_it(busy_foreign):
    before = as_found(busy_foreign)
    with pytest.raises(PassLogError, match=BUSY):
        PassLog(busy_foreign)
    assert as_found(busy_foreign)[:2] == before[:2]


def test_our_pass_log_being_written_is_still_read_and_a_second_writer_told_it_is_in_use(
        tmp_path):
    from smpdevice.records.sqlite_schema import PassLogInUse

    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as writer:
        sid = open_session(writer)
        with writer._tx():  # a write transaction under way (WAL: readers are not held)
            with PassLog(db, readonly=True) as reader:
                assert reader.session(sid).session_id == sid
            with pytest.raises(PassLogInUse):
                PassLog(db)
