"""Review 12 (REVD-1, -2, -7, -10, -15): what a pass log's writer checks and completes when it
opens, the close/anchor window, the writer's lock file, and an export where there is no key."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import smpdevice.records.sqlite as sqlite_mod
from smpdevice.cli import main
from smpdevice.passlog import PassLog, PassLogError, PassStats
from smpdevice.records.chain import record_hash
from smpdevice.records.model import checked_figures
from smpdevice.records.signing import read_anchors
from smpdevice.records.sqlite_recovery import LogAltered
from smpdevice.records.sqlite_schema import LockFileRefused
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "passlog.sqlite"


def closed_session(log: PassLog, client: str = "C-1") -> str:
    sid = open_session(log, client)
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
    log.close_session(sid, closed_at=datetime.now(UTC), summary={})
    return sid


def last_close_interrupted(log: PassLog, monkeypatch, error: BaseException,
                           raised: type[BaseException] | None = None) -> None:
    """A session closed (committed, signed) whose receipt's append is cut by `error`."""
    sid = open_session(log, "C-9")
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)

    def cut(*_args):
        raise error

    monkeypatch.setattr(sqlite_mod, "append_anchor", cut)
    with pytest.raises(raised or type(error)) as caught:
        log.close_session(sid, closed_at=datetime.now(UTC), summary={})
    monkeypatch.undo()
    if raised is PassLogError:  # the disk's refusal: said, with the receipt to keep
        assert "retried at the next close" in str(caught.value), caught.value


def audit(db: Path):
    with PassLog(db, readonly=True) as reader:
        return reader.audit()


# --- REVD-1: a close committed, its receipt cut by a crash or Ctrl-C -------------------------

def test_ctrl_c_between_a_close_and_its_receipt_is_completed_by_the_next_writer(db, monkeypatch):
    with PassLog(db) as log:
        closed_session(log)
        last_close_interrupted(log, monkeypatch, KeyboardInterrupt())
    assert not audit(db).ok  # before any writer opens it: one receipt short
    with PassLog(db) as log:
        assert [r.seq for r in log.anchored] == [8]
    result = audit(db)
    assert result.ok, result.problem
    assert [r.seq for r in read_anchors(db.with_name("passlog.anchors.jsonl"))] == [4, 8]
    with PassLog(db) as log:  # nothing more to complete: the file is left as it is
        assert log.anchored == []
    assert len(read_anchors(db.with_name("passlog.anchors.jsonl"))) == 2


def test_the_first_close_of_a_log_is_completed_too(db, monkeypatch):
    with PassLog(db) as log:
        last_close_interrupted(log, monkeypatch, KeyboardInterrupt())
    PassLog(db).close()
    assert audit(db).ok


@pytest.mark.parametrize("damage", ["emptied", "deleted", "older copy"])
def test_an_emptied_or_older_anchors_file_is_not_completed(db, monkeypatch, damage):
    anchors = db.with_name("passlog.anchors.jsonl")
    with PassLog(db) as log:
        closed_session(log)
        older = anchors.read_bytes()
        closed_session(log, "C-2")
        last_close_interrupted(log, monkeypatch, KeyboardInterrupt())
    if damage == "emptied":
        anchors.write_bytes(b"")
    elif damage == "deleted":
        anchors.unlink()
    else:
        anchors.write_bytes(older)
    with PassLog(db) as log:
        assert log.anchored == []
    problem = audit(db).problem
    assert problem is not None and "anchors file" in problem.problem, problem


def test_a_receipt_the_disk_refused_is_appended_at_the_next_close(db, monkeypatch):
    with PassLog(db) as log:
        closed_session(log)
        last_close_interrupted(log, monkeypatch, OSError(28, "No space left on device"),
                               PassLogError)
        closed_session(log, "C-3")
    assert [r.seq for r in read_anchors(db.with_name("passlog.anchors.jsonl"))] == [4, 8, 12]
    assert audit(db).ok


def test_a_reader_never_finds_the_anchors_file_free_between_a_close_and_its_receipt(db):
    anchors = db.with_name("passlog.anchors.jsonl")
    seen: list[str] = []
    real = sqlite_mod.append_anchor

    def probe(path, receipt):  # the moment a live reader would read the file
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            seen.append("free")
        except BlockingIOError:
            seen.append("held")
        finally:
            os.close(fd)
        real(path, receipt)

    with PassLog(db) as log:
        sqlite_mod.append_anchor = probe
        try:
            closed_session(log)
        finally:
            sqlite_mod.append_anchor = real
    assert seen == ["held"]
    fd = os.open(anchors, os.O_RDONLY)  # released once the receipt is in
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    finally:
        os.close(fd)


# --- REVD-2: crash recovery checks the checkpoint it chains ----------------------------------

def crashed(db: Path, figures: str | None = None, written_at: str | None = None) -> str:
    log = PassLog(db)
    sid = open_session(log)
    pass_id = begin(log, sid)
    log.checkpoint(pass_id, stats())
    log.close()  # the process died mid-pass: begun, checkpointed, never ended
    conn = sqlite3.connect(db)
    if figures is not None:
        conn.execute("UPDATE progress SET figures = ?", (figures,))
    if written_at is not None:
        conn.execute("UPDATE progress SET written_at = ?", (written_at,))
    conn.commit()
    conn.close()
    return pass_id


def recovered_pass(db: Path):
    with PassLog(db) as log:
        assert len(log.recovered) == 1
    with PassLog(db, readonly=True) as reader:
        [session] = reader.sessions()
        body = json.loads(reader._conn.execute(
            "SELECT body FROM records WHERE kind = 'pass_end'").fetchone()[0])
        return reader.session(session.session_id).passes[0], body, reader.audit()


@pytest.mark.parametrize("figures", [
    "{not json", '{"depth_mean_mm": NaN}', '{"strokes": -1000, "impressions": "many"}',
    "[]", "null", '{"samples": 3}', json.dumps({**PassStats().figures(), "strokes": -1}),
    json.dumps({**stats().figures(), "depth_mean_mm": 9.0}),
    json.dumps({**stats().figures(), "samples": 0}),
    json.dumps({**stats().figures(), "secret": 1}),
])
def test_a_damaged_checkpoint_is_recorded_as_no_figures_not_signed_in(db, figures):
    crashed(db, figures)
    record, body, result = recovered_pass(db)
    assert result.ok, result.problem
    assert body["checkpoint_damaged"] is True
    assert body["stats"] == PassStats().figures()
    assert (record.outcome, record.ended_at, record.strokes) == ("controller_crashed",
                                                                T0.isoformat(), 0)


def test_a_damaged_checkpoint_time_ends_the_pass_at_its_start(db):
    crashed(db, written_at="not a time")
    record, body, _ = recovered_pass(db)
    assert body["checkpoint_damaged"] is True and record.ended_at == T0.isoformat()


def test_a_sound_checkpoint_still_carries_its_figures(db):
    crashed(db)
    record, body, result = recovered_pass(db)
    assert result.ok and "checkpoint_damaged" not in body
    assert (record.strokes, record.samples) == (300, 3)


def test_checked_figures_takes_what_pass_stats_writes():
    for figures in (PassStats().figures(), stats().figures(), stats(depths=()).figures()):
        assert checked_figures(json.loads(json.dumps(figures))) == figures
    older = {k: v for k, v in stats().figures().items()
             if k not in ("burst_samples", "speed_burst_hz")}
    assert checked_figures(older) == older  # a checkpoint of an older version
    with pytest.raises(ValueError, match="burst"):
        checked_figures({**stats().figures(), "burst_samples": 7})


# --- REVD-7: the writer's lock file ------------------------------------------------------------

@pytest.mark.parametrize("target", ["passlog.sqlite", "passlog.anchors.jsonl", "victim.txt"])
def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_kept(db, target):
    with PassLog(db) as log:
        closed_session(log)
    victim = db.with_name(target)
    if target == "victim.txt":
        victim.write_text("keep\n")
    kept = victim.read_bytes()
    lock = db.with_name("passlog.sqlite.lock")
    lock.unlink()
    lock.symlink_to(target)
    with pytest.raises(LockFileRefused, match="symbolic link: remove it") as refused:
        PassLog(db)
    assert refused.value.exit_code == 2
    assert victim.read_bytes() == kept
    lock.unlink()
    with PassLog(db) as log:  # the writer makes its own lock again
        closed_session(log, "C-2")


def test_a_lock_file_that_is_a_hard_link_or_a_fifo_is_refused(db):
    with PassLog(db) as log:
        closed_session(log)
    victim = db.with_name("victim.txt")  # any file (the anchors one is refused itself)
    victim.write_bytes(b"keep")
    lock = db.with_name("passlog.sqlite.lock")
    lock.unlink()
    os.link(victim, lock)
    with pytest.raises(LockFileRefused, match="hard link"):
        PassLog(db)
    assert victim.read_bytes() == b"keep"
    lock.unlink()
    os.mkfifo(lock)
    with pytest.raises(LockFileRefused, match="not a regular file"):
        PassLog(db)


# --- REVD-10: never chain onto (nor sign) a head it cannot vouch for -------------------------

def forge_tail(db: Path, after_seq: int, *, signature: str | None = None) -> None:
    """Edit the records after `after_seq`, re-hash them, re-point the head (no key)."""
    conn = sqlite3.connect(db)
    prev = conn.execute("SELECT hash FROM records WHERE seq = ?", (after_seq,)).fetchone()[0]
    for seq, kind, sid, pid, written, body in conn.execute(
            "SELECT seq, kind, session_id, pass_id, written_at, body FROM records "
            "WHERE seq > ? ORDER BY seq", (after_seq,)).fetchall():
        body = body.replace('"strokes":300', '"strokes":30')
        digest = record_hash(seq, kind, sid, pid, written, body, prev)
        conn.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (body, prev, digest, seq))
        prev = digest
    conn.execute("UPDATE chain_head SET hash = ?, signature = ?", (prev, signature))
    conn.commit()
    conn.close()


def open_tail(db: Path) -> None:
    with PassLog(db) as log:
        closed_session(log)
        sid = open_session(log, "C-7")  # left open: two passes after the last close
        for i in range(2):
            log.end_pass(begin(log, sid, index=i), outcome="completed",
                         stats=stats(strokes=300), ended_at=T0)


@pytest.mark.parametrize("signature", [None, "A" * 86])
def test_a_forged_head_is_refused_by_the_next_writer_not_signed(db, signature):
    open_tail(db)
    forge_tail(db, 4, signature=signature)
    before = db.read_bytes()
    with pytest.raises(LogAltered, match="changed without the installation key") as refused:
        PassLog(db)
    assert refused.value.exit_code == 3
    assert db.read_bytes() == before
    assert not audit(db).ok  # still caught: nothing was signed over it


@pytest.mark.parametrize("change", ["added", "removed"])
def test_records_added_or_removed_after_the_head_are_refused(db, change):
    open_tail(db)
    conn = sqlite3.connect(db)
    if change == "removed":
        conn.execute("DELETE FROM records WHERE seq = (SELECT max(seq) FROM records)")
    else:
        seq, prev = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC").fetchone()
        body = '{"outcome":"completed"}'
        conn.execute("INSERT INTO records VALUES (?, 'pass_end', 'S', 'P', 'w', ?, ?, ?)",
                     (seq + 1, body, prev, record_hash(seq + 1, "pass_end", "S", "P", "w",
                                                       body, prev)))
    conn.commit()
    conn.close()
    with pytest.raises(LogAltered, match=change):
        PassLog(db)


def test_a_signed_log_stripped_of_its_signatures_is_not_adopted(db):
    """Stripped to look like a log written before heads were signed, it still names its key
    (its sessions were opened by a signing writer): refused, never adopted (review 12,
    REV2B-1; test_review12_fixw_writer.py adopts a log that really was never signed)."""
    open_tail(db)
    conn = sqlite3.connect(db)
    conn.executescript("DELETE FROM signed_heads; DELETE FROM signing_keys; "
                       "UPDATE chain_head SET signature = NULL, key_fingerprint = NULL;")
    conn.close()
    db.with_name("passlog.anchors.jsonl").unlink()
    before = db.read_bytes()
    with pytest.raises(LogAltered, match="signatures were removed"):
        PassLog(db).close()
    assert db.read_bytes() == before


# --- REVD-15: an export on a machine without the installation key ----------------------------

def test_an_export_without_a_key_creates_none_and_is_pseudonymous(db, tmp_path, monkeypatch):
    from smpdevice.records.keys import InstallationKey

    with PassLog(db, key=InstallationKey.generate()) as log:
        closed_session(log, "C-0042")
        closed_session(log, "C-0042")
    keys = tmp_path / "auditor-keys"
    monkeypatch.setenv("SMP_KEY_DIR", str(keys))
    out = io.StringIO(newline="")
    with PassLog(db, readonly=True) as reader:
        assert reader.export("csv", out) == 2
    assert not keys.exists()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert "C-0042" not in out.getvalue()
    assert rows[0]["client_ref"] == rows[1]["client_ref"]  # one person, one pseudonym
    runner = CliRunner()
    exported = runner.invoke(main, ["sessions", "export", "--format", "csv", "--db", str(db)])
    assert exported.exit_code == 0, exported.output
    refused = runner.invoke(main, ["sessions", "verify", "--db", str(db)])
    assert not keys.exists() and refused.exit_code == 2, refused.output


def test_two_closes_at_once_in_one_process_keep_both_receipts(db):
    """Two closes at once in one process (service threads): both receipts kept in order."""
    with PassLog(db) as log:
        sids = [open_session(log, f"C-{i}") for i in range(2)]
        threads = [threading.Thread(target=log.close_session, args=(sid,),
                                    kwargs={"closed_at": datetime.now(UTC), "summary": {}})
                   for sid in sids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(read_anchors(db.with_name("passlog.anchors.jsonl"))) == 2
    assert audit(db).ok
