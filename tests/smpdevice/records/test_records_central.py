"""The clinic chain's central store, against a real PostgreSQL started for these tests."""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records import central, sqlite_signing
from smpdevice.records.central import CentralStoreError, compare, sync
from smpdevice.records.chain import record_hash
from smpdevice.records.keys import InstallationKey
from smpdevice.records.signing import anchor_line, anchors_path, head_statement, read_anchors
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

psycopg = pytest.importorskip("psycopg")
KEY = InstallationKey.generate()


def add_session(log: PassLog, passes: int = 2, client: str = "C-0042") -> None:
    sid = open_session(log, client)
    for i in range(passes):
        log.end_pass(begin(log, sid, i), outcome="completed", stats=stats(), ended_at=T0)
    log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={})


def make_log(path, sessions: int = 2, key: InstallationKey = KEY):
    with PassLog(path, key=key) as log:
        for _ in range(sessions):
            add_session(log)
    return path


def central_rows(url: str, sql: str, args=()):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def test_sync_is_append_only_and_idempotent(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite")
    with PassLog(db, readonly=True) as log:
        first = sync(log, url, KEY)
        assert (first.sent, first.central_head, first.registered) == (12, 12, True)
        again = sync(log, url, KEY)
        assert (again.sent, again.central_head, again.registered) == (0, 12, False)
        assert compare(log, url).problem is None
    with PassLog(db, key=KEY) as log:
        add_session(log)
    with PassLog(db, readonly=True) as log:
        assert sync(log, url, KEY).sent == 6
        local = [(r.seq, r.hash) for r in log.records()]
    assert central_rows(url, "SELECT seq, hash FROM smp_records ORDER BY seq") == local
    assert central_rows(url, "SELECT count(*) FROM smp_signed_heads")[0][0] == 3
    assert central_rows(url, "SELECT key_fingerprint, public_key FROM smp_installations") == [
        (KEY.fingerprint, KEY.public.hex)]


def test_a_cut_connection_is_resumed(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=3)

    def cut(sent: int) -> None:  # the server drops the sync's connection after one batch
        with psycopg.connect(url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'smpdevice-sync'")

    with PassLog(db, readonly=True) as log:
        with pytest.raises(CentralStoreError, match="run the sync again to carry on"):
            sync(log, url, KEY, batch_records=5, on_batch=cut)
        assert central_rows(url, "SELECT count(*) FROM smp_records")[0][0] == 5  # kept
        resumed = sync(log, url, KEY, batch_records=5)
        assert (resumed.sent, resumed.central_head) == (13, 18)
        assert compare(log, url).problem is None


def test_a_forked_log_is_refused_naming_the_first_divergent_record(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    fork = tmp_path / "fork.sqlite"
    shutil.copyfile(db, fork)
    for path in (db, fork):  # the same log_id now grows two different ways
        with PassLog(path, key=KEY) as log:
            add_session(log, client=path.stem)
    with PassLog(db, readonly=True) as log:
        assert sync(log, url, KEY).sent == 6
    with PassLog(fork, readonly=True) as log:
        with pytest.raises(CentralStoreError, match=r"record 7 of the local log differs .* "
                                                    r"rewritten or forked; nothing was sent"):
            sync(log, url, KEY)
        assert compare(log, url).problem.startswith("record 7: the local log differs")


def test_a_log_rewritten_with_the_key_is_refused(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite")
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    # Someone with the key edits record 3 and rebuilds and re-signs everything after it.
    conn = sqlite3.connect(db, isolation_level=None)
    rows = conn.execute("SELECT * FROM records ORDER BY seq").fetchall()
    prev = rows[1][7]
    for row in rows[2:]:
        body = row[5].replace("0.4", "0.9") if row[0] == 3 else row[5]
        digest = record_hash(row[0], row[1], row[2], row[3], row[4], body, prev)
        conn.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                     (body, prev, digest, row[0]))
        prev = digest
    conn.execute("DELETE FROM signed_heads")
    log_id = sqlite_signing.log_id(conn)
    sqlite_signing.write_head(conn, KEY, log_id, rows[-1][0], prev)
    hashes = dict(conn.execute("SELECT seq, hash FROM records"))
    conn.close()
    with PassLog(db, readonly=True) as log:
        assert log.verify(trusted={KEY.fingerprint: KEY.public}, anchors=False) is None
        # Sync checks the anchors file as verify does (review 15, F2): it catches this first.
        with pytest.raises(CentralStoreError, match="differs from the receipt"):
            sync(log, url, KEY)
    # With the key, the anchors file can be re-signed too: the central store still catches it.
    anchors = anchors_path(db)
    resigned = [replace(r, head_hash=hashes[r.seq], signature=KEY.sign(head_statement(
        log_id, r.seq, hashes[r.seq]))) for r in read_anchors(anchors)]
    anchors.write_bytes(b"".join(anchor_line(r) for r in resigned))
    with PassLog(db, readonly=True) as log:
        assert log.verify(trusted={KEY.fingerprint: KEY.public}) is None
        with pytest.raises(CentralStoreError, match="record 3 of the local log differs"):
            sync(log, url, KEY)


def test_a_rolled_back_log_is_refused(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    shutil.copyfile(db, tmp_path / "old.sqlite")
    shutil.copyfile(anchors_path(db), tmp_path / "old.anchors.jsonl")
    with PassLog(db, key=KEY) as log:
        add_session(log)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    shutil.copyfile(tmp_path / "old.sqlite", db)
    with PassLog(db, readonly=True) as log, pytest.raises(  # the anchors file left catches it
            CentralStoreError, match="record 12.* is missing from the log, which ends at "
                                     "record 6"):
        sync(log, url, KEY)
    shutil.copyfile(tmp_path / "old.anchors.jsonl", anchors_path(db))  # rolled back too
    with PassLog(db, readonly=True) as log:
        with pytest.raises(CentralStoreError, match="ends at record 6 but the central store "
                                                    "holds .* up to record 12"):
            sync(log, url, KEY)
        assert compare(log, url).problem.startswith("record 7: missing locally")


def test_many_installations_into_one_database(tmp_path, url):
    other_key = InstallationKey.generate()
    a = make_log(tmp_path / "a.sqlite", sessions=1)
    b = make_log(tmp_path / "b.sqlite", sessions=2, key=other_key)
    for path, key in ((a, KEY), (b, other_key)):
        with PassLog(path, readonly=True) as log:
            sync(log, url, key)
    assert sorted(central_rows(url, "SELECT key_fingerprint FROM smp_installations")) == sorted(
        [(KEY.fingerprint,), (other_key.fingerprint,)])
    assert sorted(n for (n,) in central_rows(url, "SELECT head_seq FROM smp_logs")) == [6, 12]
    with PassLog(a, readonly=True) as log:  # a copied log synced by another installation
        with pytest.raises(CentralStoreError, match="not a trusted key"):
            sync(log, url, other_key)  # refused before anything is sent...
        conn = central.connect(url)
        try:  # ...and by the central registration itself
            with pytest.raises(CentralStoreError, match="registered .* to the installation key"):
                central._register(conn, log.log_id, other_key)
        finally:
            conn.close()


def test_the_database_refuses_rewrites_whoever_connects(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
        log_id = log.log_id
        last = list(log.records())[-1]
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in ("UPDATE smp_records SET body = '{}' WHERE seq = 2",
                          "DELETE FROM smp_records WHERE seq = 6", "TRUNCATE smp_records"):
            with pytest.raises(psycopg.Error, match="append-only"):
                conn.execute(statement)
        forged = (log_id, 7, "session_open", "Sx", None, "t", "{}", last.hash)
        with pytest.raises(psycopg.Error, match="does not match its hash"):
            conn.execute("INSERT INTO smp_records VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                         (*forged, "0" * 64))
        with pytest.raises(psycopg.Error, match="does not continue its chain"):
            conn.execute("INSERT INTO smp_records VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                         (log_id, 9, "session_open", "Sx", None, "t", "{}", last.hash,
                          record_hash(9, "session_open", "Sx", None, "t", "{}", last.hash)))
        ok = record_hash(*forged[1:])  # a well-formed continuation is accepted: the chain's
        conn.execute("INSERT INTO smp_records VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                     (*forged, ok))  # SQL hash agrees with Python's record_hash
    with PassLog(db, readonly=True) as log:  # a head nobody signed: caught by the comparison
        assert "(record 7) is not signed by its registered key" in compare(log, url).problem


def test_cli_sync_and_verify_against(tmp_path, url, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    make_log(tmp_path / "passlog.sqlite", key=InstallationKey.load_or_create())
    runner = CliRunner()
    out = runner.invoke(main, ["sessions", "sync", "--to", url])
    assert out.exit_code == 0, out.output
    assert "12 new records sent" in out.output and "(log registered)" in out.output
    assert "0 new records sent" in runner.invoke(main, ["sessions", "sync", "--to", url]).output
    checked = runner.invoke(main, ["sessions", "verify", "--against", url])
    assert checked.exit_code == 0, checked.output
    assert "the central store holds this log up to record 12" in checked.output
    bad = runner.invoke(main, ["sessions", "sync", "--to", "mysql://x"])
    assert bad.exit_code != 0 and "not a PostgreSQL URL" in bad.output
    assert "Traceback" not in bad.output


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log, pytest.raises(CentralStoreError,
                                                          match="cannot use the central"):
        central.sync(log, "postgresql://smp:secret@127.0.0.1:1/none", KEY)


def test_the_integration_doc_commands_run_as_written(tmp_path, url, monkeypatch):
    """docs/integration.md's verify/sync block, each line as printed, with only the reader's
    own server, paths, receipt and fingerprint put in."""
    import json
    import re
    import shlex
    from pathlib import Path

    from smpdevice.records.signing import Receipt, anchors_path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "integration.md").read_text()
    block = doc[doc.index("### Signed heads, receipts"):]
    block = block[block.index("```\nsmp sessions verify"):]
    lines = [line.split("  #")[0].strip() for line in block[4:block.index("```", 4)].splitlines()]
    assert any("sync --to" in line for line in lines) and any("--key" in line for line in lines)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    key = InstallationKey.load_or_create()
    db = make_log(tmp_path / "passlog.sqlite", key=key)
    receipt = Receipt(**json.loads(anchors_path(db).read_text().splitlines()[-1]))
    (tmp_path / "scanned-sheet.txt").write_text(f"Record receipt (keep it):\n{receipt.text()}\n")
    subs = [(r"postgresql://smp@db\.clinic\.example/smp", url), (r"/mnt/backup/", f"{tmp_path}/"),
            (r"SMP-RECEIPT/1 S3f2a[^\"]*", receipt.text()), (r"1a2b:3c4d:\S*", key.fingerprint)]
    for line in lines:
        command = line
        for pattern, value in subs:
            command = re.sub(pattern, value, command)
        words = shlex.split(command)
        assert words[0] == "smp", line
        result = CliRunner().invoke(main, words[1:])
        assert result.exit_code == 0, f"{line}\n{result.output}"
        assert result.output.startswith(("ok: ", "synced log ")), f"{line}\n{result.output}"
