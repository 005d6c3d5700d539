"""Review 12 (REVD-3, REVD-4, REVD-11): every log of the data directory is checked and named,
also one that cannot be opened, one that was deleted (its anchors file left) and the ones after
a broken log."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.logset import existing, logs_beside
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def data() -> Path:
    """The data directory ($SMP_DATA_DIR) with the station's log: one closed session."""
    path = Path(os.environ["SMP_DATA_DIR"])
    with PassLog(path / "passlog.sqlite") as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        log.close_session(sid, closed_at=T0, summary={})
    return path


def _pen_log(data: Path, serial: str = "SMP-2") -> Path:
    """A second chair's log (and its anchors file) beside the station's: one closed session.
    A log of its own (review 18: a copy of the station's is one log twice, which verify names
    `copied`)."""
    pen = data / f"passlog-{serial}.sqlite"
    with PassLog(pen) as log:
        sid = open_session(log)
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        log.close_session(sid, closed_at=T0, summary={})
    return pen


@pytest.mark.parametrize("kind", ["dangling", "loop", "directory", "fifo"])
def test_a_pen_log_that_cannot_be_opened_is_named_and_exits_3(data, kind):
    pen = data / "passlog-SMP-2.sqlite"
    if kind == "dangling":  # its drive is not mounted today
        pen.symlink_to("/mnt/not-mounted/passlog-SMP-2.sqlite")
    elif kind == "loop":
        pen.symlink_to(pen)
    elif kind == "directory":
        pen.mkdir()
    else:
        os.mkfifo(pen)
    assert pen in existing(logs_beside(data / "passlog.sqlite"))
    result = smp("sessions", "verify")
    assert result.exit_code == 3, result.output
    assert f"{pen}:\nnot checked: " in result.output  # named where its line would be
    assert result.output.startswith(f"{data / 'passlog.sqlite'}:\nok: ")  # the others are
    if kind in ("dangling", "loop"):
        assert "symbolic link" in result.output
        assert ("leads back to itself" in result.output) == (kind == "loop")
    listed = smp("sessions", "list")
    assert listed.exit_code == 3 and str(pen) in listed.stderr, listed.output


def test_a_pen_log_deleted_with_its_anchors_file_left_fails_verify(data):
    pen = _pen_log(data)
    assert smp("sessions", "verify").exit_code == 0
    kept = pen.read_bytes()  # a backup of it
    pen.unlink()
    result = smp("sessions", "verify")
    assert result.exit_code == 1, result.output
    assert (f"missing: the pass log {pen} is missing, though its anchors file "
            f"{data / 'passlog-SMP-2.anchors.jsonl'} holds 1 receipt") in result.output
    from smpdevice.service import records_api

    answer = records_api.verify(None)  # the service's sessions.verify says it too
    assert not answer["ok"] and "missing: the pass log" in answer["problem"]
    assert smp("sessions", "list").exit_code == 0  # the logs there are still listed
    assert records_api.list_sessions(None)["total"] == 1
    # The station's own log deleted the same way, a pen's log left: also caught.
    pen.write_bytes(kept)  # the pen's log restored
    (data / "passlog.sqlite").unlink()
    result = smp("sessions", "verify")
    assert result.exit_code == 1, result.output
    assert f"missing: the pass log {data / 'passlog.sqlite'} is missing" in result.output
    assert f"{pen}:\nok: " in result.output


def test_an_empty_anchors_file_alone_is_no_log(data):
    (data / "passlog-SMP-2.anchors.jsonl").write_bytes(b"")  # no session was anchored
    assert existing(logs_beside(data / "passlog.sqlite")) == [data / "passlog.sqlite"]
    assert smp("sessions", "verify").exit_code == 0


def _edit(path: Path, seq: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE records SET body = replace(body, '\"completed\"', '\"stopped\"') "
                 "WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()


def test_verify_goes_on_after_a_broken_log(data):
    pen = _pen_log(data)
    third = _pen_log(data, "SMP-3")
    _edit(data / "passlog.sqlite", 3)
    _edit(third, 3)
    result = smp("sessions", "verify")
    assert result.exit_code == 1
    blocks = result.output.split(f"{pen}:\n")
    assert "broken link: record 3" in blocks[0]  # the station's
    assert blocks[1].startswith("ok: ")  # the pen's, checked after it
    assert blocks[1].split(f"{third}:\n")[1].startswith("broken link: record 3")


def test_every_log_deleted_is_found_from_the_station(data):
    # All logs gone, the anchors file left: `verify_all` named the station finds it.
    from smpdevice.records.verifying import resolve_trust, verify_all

    station = data / "passlog.sqlite"
    station.unlink()
    found = verify_all([], resolve_trust(), station=station)
    assert found.problem is not None and found.problem.startswith(
        f"missing: the pass log {station} is missing")
    assert smp("sessions", "verify").exit_code == 1
