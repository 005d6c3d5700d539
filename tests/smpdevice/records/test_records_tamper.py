"""Someone with write access to the files but not the key (issue 12): each attack is named.

Every attack here said "ok" on the old code (plain SHA-256 chain, unsigned head, no anchors).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from datetime import timedelta

import pytest

from smpdevice.records import sqlite_signing
from smpdevice.records.chain import record_hash
from smpdevice.records.keys import KEY_FILE_NAME, InstallationKey, key_dir
from smpdevice.records.signing import Receipt, ReceiptError, anchors_path, head_statement
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

KEY = InstallationKey.generate()
TRUSTED = {KEY.fingerprint: KEY.public}


def session(log: PassLog, passes: int = 2) -> Receipt:
    sid = open_session(log)
    for i in range(passes):
        log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(), ended_at=T0)
    return log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "passlog.sqlite"
    with PassLog(path, key=KEY) as log:
        session(log)
        session(log)
    return path


def problem(db, **kw) -> str:
    with PassLog(db, readonly=True) as log:
        found = log.verify(trusted=TRUSTED, **kw)
    assert found is not None, "the attack was not caught"
    return str(found)


def sql(db, *statements: str, args=()) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in statements:
        conn.execute(statement, args) if args else conn.execute(statement)
    conn.close()


def test_an_untouched_log_verifies_with_every_signature_and_anchor(db):
    with PassLog(db, readonly=True) as log:
        result = log.audit(trusted=TRUSTED)
    assert result.ok and result.count == 12 and result.key_trusted
    assert result.signatures_checked == 3 and result.anchors_checked == 2  # 2 closes + head


def test_cut_tail_with_the_head_rewritten(db):
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DELETE FROM records WHERE seq > 10")
    conn.execute("DELETE FROM signed_heads WHERE seq > 10")
    conn.execute("UPDATE chain_head SET seq = 10, hash = (SELECT hash FROM records "
                 "WHERE seq = 10)")
    conn.close()
    text = problem(db)
    assert text.startswith("record 7: not covered by a valid signature")
    assert "(record 10) has a signature that does not verify" in text


def test_head_table_dropped(db):
    sql(db, "DROP TABLE chain_head")
    assert "the chain head is missing" in problem(db)


@pytest.mark.parametrize("tables", [("records",), ("records", "chain_head"),
                                    ("records", "chain_head", "signed_heads")])
def test_log_emptied(db, tables):
    sql(db, *(f"DELETE FROM {table}" for table in tables))
    text = problem(db)
    assert "removed" in text or "missing" in text
    if len(tables) == 3:  # only the anchors are left to tell
        assert "the receipt of session" in text and "missing from the log" in text


def test_forged_record_with_a_recomputed_plain_hash(db):
    conn = sqlite3.connect(db, isolation_level=None)
    seq, prev = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC").fetchone()
    forged = (seq + 1, "session_open", "Sforged", None, "2025-01-01T00:00:00+00:00", "{}", prev)
    digest = record_hash(*forged)
    conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*forged, digest))
    conn.execute("UPDATE chain_head SET seq = ?, hash = ?", (seq + 1, digest))
    conn.close()
    assert problem(db).startswith(f"record {seq + 1}: not covered by a valid signature")


def test_forged_record_without_touching_the_head(db):
    conn = sqlite3.connect(db, isolation_level=None)
    seq, prev = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC").fetchone()
    forged = (seq + 1, "session_open", "Sforged", None, "2025-01-01T00:00:00+00:00", "{}", prev)
    conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (*forged, record_hash(*forged)))
    conn.close()
    assert problem(db).startswith(f"record {seq + 1}: records {seq + 1}..{seq + 1} were added")


def test_rollback_to_an_older_copy(tmp_path):
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        session(log)
    shutil.copyfile(db, tmp_path / "old.sqlite")  # closed cleanly: the WAL is checkpointed
    with PassLog(db, key=KEY) as log:
        second = session(log)
    shutil.copyfile(tmp_path / "old.sqlite", db)
    text = problem(db)
    assert f"the receipt of session {second.session_id}" in text
    assert "older copy" in text


def test_everything_re_signed_with_another_key_is_not_trusted(db):
    thief = InstallationKey.generate()
    conn = sqlite3.connect(db, isolation_level=None)
    log_id = sqlite_signing.log_id(conn)
    sqlite_signing.register_key(conn, thief)
    for seq, digest in conn.execute("SELECT seq, hash FROM signed_heads").fetchall():
        conn.execute("UPDATE signed_heads SET key_fingerprint = ?, signature = ? WHERE seq = ?",
                     (thief.fingerprint, thief.sign(head_statement(log_id, seq, digest)), seq))
    sqlite_signing.write_head(conn, thief, log_id, *conn.execute(
        "SELECT seq, hash FROM chain_head").fetchone())
    conn.close()
    text = problem(db, anchors=False)
    assert f"signed by key {thief.fingerprint}, which is not a trusted key" in text
    with PassLog(db, readonly=True) as log:  # consistent with its own keys, and says so
        result = log.audit(trusted=None, anchors=False)
    assert result.ok and not result.key_trusted and thief.fingerprint in result.key_fingerprints


def test_anchors_file_deleted_is_named(db):
    anchors_path(db).unlink()
    assert "the anchors file" in problem(db) and "is missing" in problem(db)
    with PassLog(db, readonly=True) as log:
        assert log.verify(trusted=TRUSTED, anchors=False) is None


def test_a_kept_receipt_is_checked(tmp_path):
    db, other = tmp_path / "passlog.sqlite", tmp_path / "other.sqlite"
    with PassLog(db, key=KEY) as log:
        kept = session(log)
    with PassLog(other, key=KEY) as log:
        foreign = session(log)  # same key, another log: its signature names the other log
    with PassLog(db, readonly=True) as log:
        assert log.verify(trusted=TRUSTED, anchors=[("receipt", Receipt.parse(kept.text()))]) \
            is None
    text = problem(db, anchors=[("receipt", foreign)])
    assert "differs from the receipt" in text or "not signed by a trusted key" in text
    forged = Receipt(kept.session_id, kept.seq, kept.head_hash, "A" * 86)
    assert "not signed by a trusted key for this log" in problem(db, anchors=[("r", forged)])


def test_receipt_text_round_trip_and_strictness():
    receipt = Receipt("S" + "a" * 16, 12, "b" * 64, "c" * 86)
    printed = f"Receipt (keep it): {receipt.text()}\n"
    assert Receipt.parse(printed) == receipt
    assert Receipt.parse(receipt.text().replace(" #", "\n#")) == receipt  # wrapped on a sheet
    for bad in ("", "SMP-RECEIPT/1 S123 #1 x y", receipt.text().replace("#12", "#0"),
                receipt.text()[:-1]):
        with pytest.raises(ReceiptError, match="no receipt found"):
            Receipt.parse(bad)


def test_uncovered_records_are_named_from_the_last_valid_signed_head(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_signing, "SIGN_EVERY_RECORDS", 4)
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=KEY) as log:
        sid = open_session(log)
        for i in range(5):  # records 2..11
            log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(), ended_at=T0)
    sql(db, "UPDATE chain_head SET signature = ?", args=("A" * 86,))
    assert problem(db).startswith("record 9: not covered by a valid signature")


def test_the_key_is_private_and_made_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    old = os.umask(0o022)
    try:
        first = InstallationKey.load_or_create()
        again = InstallationKey.load_or_create()
    finally:
        os.umask(old)
    assert first.fingerprint == again.fingerprint
    assert stat.S_IMODE((key_dir() / KEY_FILE_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir().stat().st_mode) == 0o700
    db = tmp_path / "data" / "passlog.sqlite"
    db.parent.mkdir()
    with PassLog(db) as log:  # a writer without a key argument uses the installation key
        sid = open_session(log)
        assert log.key_fingerprint == first.fingerprint
    with PassLog(db, readonly=True) as log:
        assert log.session(sid).key_fingerprint == first.fingerprint


# The parallel walk forks only a single-threaded process (sqlite_signing), and a pytest worker
# may hold other tests' threads: so a big log is walked in a fresh process of its own, with the
# threshold lowered (a small log is "big") and the one-process walk forbidden.
_WALK_IN_PARALLEL = """
import json, os, sys
from smpdevice.records import sqlite_signing
from smpdevice.records.keys import PublicKey
from smpdevice.records.sqlite import PassLog

def no_serial(*args):
    raise AssertionError("the parallel walk was not used")

sqlite_signing.PARALLEL_FROM_RECORDS = 10
sqlite_signing._serial = no_serial
os.cpu_count = lambda: 3
key = PublicKey(sys.argv[2])
with PassLog(sys.argv[1], readonly=True) as log:
    audit = log.audit(trusted={key.fingerprint: key})
problem = None if audit.problem is None else str(audit.problem)
print(json.dumps({"ok": audit.ok, "count": audit.count,
                  "anchors_checked": audit.anchors_checked, "problem": problem}))
"""


def walked_in_parallel(db) -> dict:
    done = subprocess.run([sys.executable, "-c", _WALK_IN_PARALLEL, str(db), KEY.public.hex],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def parallel_problem(db) -> str:
    found = walked_in_parallel(db)["problem"]
    assert found is not None, "the attack was not caught"
    return found


@pytest.fixture
def big_log(tmp_path):
    """A log of 32 records: the walk's ranges 1..11, 12..22, 23..32 over three processes."""
    path = tmp_path / "passlog.sqlite"
    with PassLog(path, key=KEY) as log:
        for _ in range(4):
            session(log, passes=3)
    return path


def test_a_big_log_is_verified_in_parallel_and_attacks_are_still_named(big_log):
    result = walked_in_parallel(big_log)
    assert result["ok"] and result["count"] == 32 and result["anchors_checked"] == 4, result
    sql(big_log, "UPDATE records SET body = body || ' ' WHERE seq = 17")
    text = parallel_problem(big_log)
    assert text.startswith("record 17: (") and "was altered" in text, text


@pytest.mark.parametrize("seam", [12, 23])
def test_a_record_deleted_at_a_seam_between_workers_is_named(big_log, seam):
    sql(big_log, f"DELETE FROM records WHERE seq = {seam}")
    text = parallel_problem(big_log)
    assert text.startswith(f"record {seam + 1}: record {seam} is missing (deleted)"), text


def test_a_relinked_record_at_a_seam_is_named(big_log):
    sql(big_log, "UPDATE records SET prev_hash = ? WHERE seq = 12", args=("f" * 64,))
    text = parallel_problem(big_log)
    assert text.startswith("record 12: (") and "does not link" in text, text
