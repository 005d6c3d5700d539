"""Review 12, second round (REV2B-1..5): a log stripped of its signatures is refused, not
adopted; one writer per log file whatever name reaches it (a symlink, a hard link); receipts
never appended through a link; every receipt refused appends kept out, and one a power cut
tore, are put back by the next writer's open; an emptied or older anchors file still fails."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog, PassLogError
from smpdevice.records.chain import GENESIS_HASH, record_hash
from smpdevice.records.signing import ReceiptError, read_anchors
from smpdevice.records.sqlite_recovery import LogAltered
from smpdevice.records.sqlite_schema import MIGRATIONS, AnchorsFileRefused, PassLogInUse
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats


def closed_session(log: PassLog, client: str) -> None:
    sid = open_session(log, client)
    log.end_pass(begin(log, sid), outcome="completed", stats=stats(strokes=300), ended_at=T0)
    log.close_session(sid, closed_at=datetime.now(UTC), summary={})


def audit(db: Path):
    with PassLog(db, readonly=True) as reader:
        return reader.audit()


def fails_verify(db: Path) -> bool:
    try:
        return not audit(db).ok
    except ReceiptError:  # a damaged anchors file (verify exits 2)
        return True


def anchors_of(db: Path) -> Path:
    return db.with_name("passlog.anchors.jsonl")


# --- REV2B-1: a log stripped to look "never signed" ------------------------------------------

def strip_signatures(db: Path, *, keep: str) -> None:
    """Someone with the file, not the key: edits a figure, re-hashes the chain, strips the
    signatures; `keep` is the one trace of a key they left (or "none" left but the bodies)."""
    conn = sqlite3.connect(db)
    prev = GENESIS_HASH
    for seq, kind, sid, pid, written, body in conn.execute(
            "SELECT seq, kind, session_id, pass_id, written_at, body FROM records "
            "ORDER BY seq").fetchall():
        body = body.replace('"strokes":300', '"strokes":30')
        if keep != "session_open":
            body = body.replace('"key_fingerprint":', '"was_key":')
        digest = record_hash(seq, kind, sid, pid, written, body, prev)
        conn.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (body, prev, digest, seq))
        prev = digest
    conn.execute("UPDATE chain_head SET hash = ?, signature = NULL, key_fingerprint = NULL",
                 (prev,))
    conn.execute("DELETE FROM signed_heads")
    if keep != "signing_keys":
        conn.execute("DELETE FROM signing_keys")
    conn.commit()
    conn.close()
    if keep != "anchors":
        anchors_of(db).unlink()


@pytest.mark.parametrize("keep", ["session_open", "signing_keys", "anchors"])
def test_a_log_stripped_of_its_signatures_is_refused_not_adopted(tmp_path, keep):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        closed_session(log, "C-1")
        closed_session(log, "C-2")
    strip_signatures(db, keep=keep)
    before = db.read_bytes()
    with pytest.raises(LogAltered, match="its signatures were removed") as refused:
        PassLog(db)  # the next `smp run`
    assert refused.value.exit_code == 3
    assert db.read_bytes() == before  # nothing signed over the forged figures
    assert not audit(db).ok


def test_a_log_written_before_heads_were_signed_is_still_adopted(tmp_path):
    db = tmp_path / "passlog.sqlite"
    conn = sqlite3.connect(db)  # schema 2, as the version before signing wrote it
    for version, description, statements in MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, '2025-01-01T00:00:00+00:00', ?)",
                     (version, description))
    prev = GENESIS_HASH
    for seq, (kind, pid, body) in enumerate(
            [("session_open", None, '{"opened_at":"2025-01-01T10:00:00+00:00"}'),
             ("pass_begin", "P1", '{"index":0,"started_at":"2025-01-01T10:01:00+00:00"}')],
            start=1):
        digest = record_hash(seq, kind, "S1", pid, "2025-01-01T10:02:00+00:00", body, prev)
        conn.execute("INSERT INTO records VALUES (?, ?, 'S1', ?, ?, ?, ?, ?)",
                     (seq, kind, pid, "2025-01-01T10:02:00+00:00", body, prev, digest))
        prev = digest
    conn.execute("INSERT INTO chain_head (id, seq, hash) VALUES (1, 2, ?)", (prev,))
    conn.commit()
    conn.close()
    with PassLog(db) as log:
        assert log.recovered == ["P1"]
    assert audit(db).ok


# --- REV2B-2, -3: one writer per file, whatever name reaches it ------------------------------

def live_pass(log: PassLog) -> tuple[str, str]:
    sid = open_session(log, "C-1")
    return sid, begin(log, sid)


@pytest.mark.parametrize("how", ["symlinked file", "symlinked directory", "hard link"])
def test_a_second_writer_by_another_name_is_refused_and_the_live_pass_kept(tmp_path, how):
    real = tmp_path / "disk" / "passlog.sqlite"
    real.parent.mkdir()
    other = tmp_path / "chair2" / "passlog.sqlite"
    other.parent.mkdir()
    with PassLog(real) as first:
        sid, pid = live_pass(first)
        if how == "symlinked file":
            other.symlink_to(real)
        elif how == "symlinked directory":
            other = tmp_path / "data" / "passlog.sqlite"
            other.parent.symlink_to(real.parent)
        else:
            os.link(real, other)
        with pytest.raises(PassLogInUse, match="is in use by"):
            PassLog(other)
        first.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)  # not "crashed"
        first.close_session(sid, closed_at=datetime.now(UTC), summary={})
    assert audit(real).ok
    if how != "hard link":  # the same log, the same anchors file, by either name
        assert audit(other).ok
    with PassLog(other) as again:  # once the first writer is gone, either name opens it
        assert again.recovered == []


def test_a_second_writer_process_through_a_hard_link_is_refused(tmp_path):
    real = tmp_path / "a" / "passlog.sqlite"
    real.parent.mkdir()
    other = tmp_path / "b" / "passlog.sqlite"
    other.parent.mkdir()
    with PassLog(real) as first:
        _, pid = live_pass(first)
        os.link(real, other)
        child = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom smpdevice.passlog import PassLog\n"
             "try:\n    PassLog(sys.argv[1]).close()\nexcept Exception as exc:\n"
             "    print(type(exc).__name__, exc)\n", str(other)],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[3])
        assert child.stdout.startswith("PassLogInUse"), (child.stdout, child.stderr)
        assert "another name" in child.stdout
        first.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)
    assert audit(real).ok


def test_the_lock_and_the_anchors_sit_beside_the_real_file(tmp_path):
    real = tmp_path / "disk" / "passlog.sqlite"
    real.parent.mkdir()
    link = tmp_path / "passlog.sqlite"
    link.symlink_to(real)
    with PassLog(link) as log:
        assert real.with_name("passlog.sqlite.lock").is_file()
        closed_session(log, "C-1")
    assert [r.seq for r in read_anchors(anchors_of(real))] == [4]
    assert not anchors_of(link).exists()


# --- receipts never appended through a link ----------------------------------------------------

def test_a_writer_refuses_a_symlinked_anchors_file_before_writing(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        closed_session(log, "C-1")
    kept = anchors_of(db).read_bytes()
    victim = tmp_path / "victim.jsonl"
    anchors_of(db).rename(victim)
    anchors_of(db).symlink_to(victim)
    before = db.read_bytes()
    with pytest.raises(AnchorsFileRefused, match="is a symbolic link") as refused:
        PassLog(db)
    assert refused.value.exit_code == 2
    assert db.read_bytes() == before and victim.read_bytes() == kept
    assert audit(db).ok  # readers still read it


def test_a_link_made_while_the_writer_runs_is_not_appended_through(tmp_path):
    db = tmp_path / "passlog.sqlite"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    with PassLog(db) as log:
        sid = open_session(log, "C-1")
        log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        anchors_of(db).unlink(missing_ok=True)
        anchors_of(db).symlink_to(victim)
        with pytest.raises(PassLogError, match="symbolic link, never appended through"):
            log.close_session(sid, closed_at=datetime.now(UTC), summary={})
    assert victim.read_text() == "keep\n"


# --- REV2B-4: every receipt refused appends kept out is put back ------------------------------

def one_run(db: Path, client: str) -> Exception | None:
    """One `smp run`: open the log, one session, close; the close's error, if any."""
    with PassLog(db) as log:
        try:
            closed_session(log, client)
        except PassLogError as exc:
            return exc
    return None


def test_receipts_refused_over_several_runs_are_all_put_back(tmp_path):
    db = tmp_path / "passlog.sqlite"
    assert one_run(db, "C-1") is None
    anchors = anchors_of(db)
    anchors.rename(tmp_path / "away.jsonl")
    anchors.mkdir()  # appends refused by the OS for two runs (EISDIR)
    for client in ("C-2", "C-3"):
        refused = one_run(db, client)
        assert refused is not None and "retried at the next close or start" in str(refused)
    anchors.rmdir()
    (tmp_path / "away.jsonl").rename(anchors)
    with PassLog(db) as log:  # the next start
        assert [r.seq for r in log.anchored] == [8, 12]
    result = audit(db)
    assert result.ok, result.problem
    with sqlite3.connect(db) as conn:  # the note of what was kept out is gone
        assert conn.execute("SELECT count(*) FROM meta WHERE name = 'anchors_pending'"
                            ).fetchone()[0] == 0
    assert one_run(db, "C-4") is None
    assert [r.seq for r in read_anchors(anchors)] == [4, 8, 12, 16]


@pytest.mark.parametrize("damage", ["emptied", "older copy"])
def test_an_emptied_or_older_anchors_file_is_still_not_completed(tmp_path, damage):
    db = tmp_path / "passlog.sqlite"
    assert one_run(db, "C-1") is None
    older = anchors_of(db).read_bytes()
    for client in ("C-2", "C-3"):
        assert one_run(db, client) is None
    anchors_of(db).write_bytes(b"" if damage == "emptied" else older)
    with PassLog(db) as log:
        assert log.anchored == []
    problem = audit(db).problem
    assert problem is not None and "anchors file" in problem.problem, problem


# --- REV2B-5: a receipt a power cut tore ------------------------------------------------------

@pytest.mark.parametrize("closes", [1, 2])
def test_a_receipt_torn_by_a_power_cut_is_completed(tmp_path, closes):
    db = tmp_path / "passlog.sqlite"
    for n in range(closes):
        assert one_run(db, f"C-{n}") is None
    anchors = anchors_of(db)
    data = anchors.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    anchors.write_bytes(data[: last + 40])  # the last receipt half written
    assert fails_verify(db)
    with PassLog(db) as log:
        assert [r.seq for r in log.anchored] == [4 * closes]
    assert anchors.read_bytes() == data
    result = audit(db)
    assert result.ok, result.problem


def test_a_last_line_that_is_no_torn_receipt_is_left_for_verify(tmp_path):
    db = tmp_path / "passlog.sqlite"
    for client in ("C-1", "C-2"):
        assert one_run(db, client) is None
    anchors = anchors_of(db)
    damaged = anchors.read_bytes() + b'{"closed_at": "1999'
    anchors.write_bytes(damaged)
    with PassLog(db) as log:
        assert log.anchored == []
    assert anchors.read_bytes() == damaged
    assert fails_verify(db)
