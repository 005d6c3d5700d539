"""Session 12 fixes of the central store (review REVD-5, -6, -9, -13), against the suite's real
PostgreSQL server: a refused log exits 1 (a check failed) and stops no other log's sync; two
syncs of one log at once both succeed, nothing sent twice; a sync cut mid-way leaves the head's
signature with its head and is not called a forgery; a record appended centrally without the
key is named as such, not blamed on the installation."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.records.central import CentralRefused, CentralStoreError, compare, sync
from smpdevice.records.chain import record_hash
from smpdevice.records.keys import InstallationKey, PublicKey
from smpdevice.records.signing import anchors_path, head_statement
from smpdevice.records.sqlite import PassLog
from tests.smpdevice.records.test_records_central import KEY, add_session, central_rows, make_log

psycopg = pytest.importorskip("psycopg")


def _tamper(db, seq: int = 3) -> None:
    conn = sqlite3.connect(db)
    conn.execute("UPDATE records SET body = replace(body, '0.4', '0.9') WHERE seq = ?", (seq,))
    conn.commit()
    conn.close()


def _smp(*args: str):
    return CliRunner().invoke(main, list(args))


# REVD-5: a check that failed is exit 1 (README's exit table), a store that cannot be used 2.

def _copy(log, to):
    """A copy of the log and its anchors file."""
    shutil.copyfile(log, to)
    shutil.copyfile(anchors_path(log), anchors_path(to))


def test_every_refusal_of_the_local_log_is_a_failed_check_exit_1(tmp_path, url, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    key = InstallationKey.load_or_create()
    db = make_log(tmp_path / "passlog.sqlite", sessions=1, key=key)
    (tmp_path / "copies").mkdir()  # outside the data directory: a copy in it is refused
    older = tmp_path / "copies" / "older.sqlite"
    _copy(db, older)  # each copy with its anchors file: sync checks it, as verify does
    with PassLog(db, key=key) as log:
        add_session(log)
    assert _smp("sessions", "sync", "--to", url).exit_code == 0
    forked = tmp_path / "copies" / "forked.sqlite"
    _copy(older, forked)
    with PassLog(forked, key=key) as log:
        add_session(log, client="C-FORK")
    tampered = tmp_path / "tampered.sqlite"
    _copy(db, tampered)
    _tamper(tampered)
    for path, says in ((older, "records were removed locally"),
                       (forked, "rewritten or forked"), (tampered, "does not verify")):
        result = _smp("sessions", "sync", "--to", url, "--db", str(path))
        assert (result.exit_code, says in result.output) == (1, True), result.output
        assert "Traceback" not in result.output
    with PassLog(tampered, readonly=True) as log, pytest.raises(CentralRefused) as refused:
        sync(log, url, key)
    assert refused.value.exit_code == 1
    # Another installation's key: refused, exit 1.
    with PassLog(db, readonly=True) as log, pytest.raises(CentralRefused):
        sync(log, url, InstallationKey.generate())
    # A store that cannot be used stays exit 2 (a bad URL, server or rights): not refused.
    for bad in ("mysql://x", "postgresql://smp@127.0.0.1:1/none"):
        result = _smp("sessions", "sync", "--to", bad, "--db", str(db))
        assert result.exit_code == 2, result.output
    with PassLog(db, readonly=True) as log, pytest.raises(CentralStoreError) as unusable:
        sync(log, "postgresql://smp@127.0.0.1:1/none", key)
    assert not isinstance(unusable.value, CentralRefused)


def test_a_refused_station_log_stops_no_pen_logs_sync(tmp_path, url, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    key = InstallationKey.load_or_create()
    station = make_log(tmp_path / "passlog.sqlite", sessions=1, key=key)
    pen = make_log(tmp_path / "passlog-SMP-2.sqlite", sessions=1, key=key)
    _tamper(station)
    result = _smp("sessions", "sync", "--to", url)
    assert result.exit_code == 1, result.output
    assert "passlog.sqlite: the local log does not verify" in result.output
    with PassLog(pen, readonly=True) as log:
        assert "6 new records sent" in result.output
        assert compare(log, url).problem is None  # the pen's log was synced all the same


def test_sync_on_a_machine_without_the_key_refuses_and_makes_none(tmp_path, url, monkeypatch):
    make_log(tmp_path / "passlog.sqlite", sessions=1)
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "no-keys-here"))
    result = _smp("sessions", "sync", "--to", url)
    assert result.exit_code == 2, result.output
    assert "this machine has no installation key" in result.output
    assert not (tmp_path / "no-keys-here").exists()  # a reader never makes a key


# REVD-6: syncs of one log at once.

def _waiting_copies(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as watch:
        return watch.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                             "'Lock' AND query LIKE 'COPY%'").fetchone()[0]


@pytest.mark.parametrize("batch_records", [3, 5000])
def test_syncs_of_one_log_at_once_all_succeed_and_send_each_record_once(tmp_path, url,
                                                                         batch_records):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    with PassLog(db, key=KEY) as log:
        for _ in range(3):
            add_session(log)  # 18 new records
    results: list[object] = []

    def one_sync() -> None:
        try:
            with PassLog(db, readonly=True) as log:
                results.append(sync(log, url, KEY, batch_records=batch_records))
        except Exception as exc:  # shown by the assertion below
            results.append(exc)

    # A table lock held meanwhile holds every sync at its first COPY, each having read the
    # same central head: the race, made certain.
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE smp_records IN SHARE MODE")
        threads = [threading.Thread(target=one_sync) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while _waiting_copies(url) < 3:
            assert time.monotonic() < deadline, f"the syncs never reached their COPY: {results}"
            time.sleep(0.02)  # polling a condition
        holder.rollback()
    for thread in threads:
        thread.join(timeout=60)
    assert all(not isinstance(r, Exception) for r in results), results
    assert sum(r.sent for r in results) == 18  # type: ignore[attr-defined]
    assert {r.central_head for r in results} == {24}  # type: ignore[attr-defined]
    with PassLog(db, readonly=True) as log:
        local = [(r.seq, r.hash) for r in log.records()]
        assert compare(log, url).problem is None
    assert central_rows(url, "SELECT seq, hash FROM smp_records ORDER BY seq") == local


# REVD-9: a sync cut mid-way.

def _central_head(url: str):
    return central_rows(url, "SELECT l.log_id, l.head_seq, l.head_hash, l.head_signature "
                             "FROM smp_logs l")[0]


def test_a_cut_sync_keeps_the_heads_signature_with_its_head_at_every_batch(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=4)  # sessions close at 6, 12, 18, 24
    seen: list[tuple[int, bool | None]] = []

    def check(_sent: int) -> None:  # what anyone reading the store sees after each batch
        log_id, seq, digest, signature = _central_head(url)
        seen.append((seq, None if signature is None else
                     KEY.public.verify(signature, head_statement(log_id, seq, digest))))

    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY, batch_records=4, on_batch=check)
    # Each full batch ends at the last signed head in it (a session close) where it holds
    # one; the head's signature is its own, or none while no signed head was reached yet.
    assert seen[-1] == (24, True)
    assert all(ok is not False for _, ok in seen), seen
    assert [seq for seq, ok in seen if ok] == [6, 12, 18, 24], seen

    class Cut(Exception):
        """Ctrl-C (or the connection lost) right after a committed batch."""

    def cut(_sent: int) -> None:
        raise Cut

    with PassLog(db, key=KEY) as log:
        add_session(log)  # records 25..30, its close signed at 30
    with PassLog(db, readonly=True) as log:
        with pytest.raises(Cut):
            sync(log, url, KEY, batch_records=3, on_batch=cut)  # 25..27: no signed head
        assert _central_head(url)[1:] == (27, log.records(after_seq=26).__next__().hash, None)
        assert compare(log, url).problem is None  # a prefix of the local log: no forgery
        resumed = sync(log, url, KEY, batch_records=3)
        assert (resumed.sent, resumed.central_head) == (3, 30)
    log_id, seq, digest, signature = _central_head(url)
    assert KEY.public.verify(signature, head_statement(log_id, seq, digest))


def test_a_head_signature_left_by_an_older_cut_sync_is_not_a_forgery(tmp_path, url):
    """An smpdevice before session 12 left the old head's signature beside a head its cut
    sync moved on: a signature of a head the store keeps, not a forgery."""
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY)
    old_signature = _central_head(url)[3]
    with PassLog(db, key=KEY) as log:
        add_session(log)
    with PassLog(db, readonly=True) as log:
        with pytest.raises(ZeroDivisionError):
            sync(log, url, KEY, batch_records=2, on_batch=lambda _sent: 1 // 0)
        with psycopg.connect(url, autocommit=True) as conn:  # as the older sync left it
            conn.execute("UPDATE smp_logs SET head_signature = %s", (old_signature,))
        assert compare(log, url).problem is None
        with psycopg.connect(url, autocommit=True) as conn:  # a signature of nothing kept
            conn.execute("UPDATE smp_logs SET head_signature = %s",
                         (InstallationKey.generate().sign(b"anything"),))
        assert "(record 8) is not signed by its registered key" in compare(log, url).problem


# REVD-13: a record appended to the central store without the key.

@pytest.mark.parametrize("head_signature", ["null", "left", "forged head row"])
def test_a_record_appended_centrally_without_the_key_is_named_as_such(tmp_path, url,
                                                                      monkeypatch,
                                                                      head_signature):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    key = InstallationKey.load_or_create()
    db = make_log(tmp_path / "passlog.sqlite", sessions=2, key=key)
    assert _smp("sessions", "sync", "--to", url).exit_code == 0
    log_id, seq, head, _ = _central_head(url)
    with psycopg.connect(url, autocommit=True) as conn:  # a PC's rights, not the key
        for n in (seq + 1, seq + 2):
            written, body, sid = "2026-11-30T04:00:00+00:00", '{"client_ref":"C-X"}', "Sd"
            digest = record_hash(n, "session_open", sid, None, written, body, head)
            conn.execute("INSERT INTO smp_records VALUES (%s, %s, 'session_open', %s, NULL, "
                         "%s, %s, %s, %s)", (log_id, n, sid, written, body, head, digest))
            head = digest
        if head_signature == "null":
            conn.execute("UPDATE smp_logs SET head_signature = NULL")
        elif head_signature == "forged head row":  # a signed head row nobody's key signed
            conn.execute("INSERT INTO smp_signed_heads VALUES (%s, %s, %s, 'head', %s, %s)",
                         (log_id, seq + 2, head, key.fingerprint,
                          InstallationKey.generate().sign(head_statement(log_id, seq + 2,
                                                                         head))))
    result = _smp("sessions", "verify", "--against", url)
    assert result.exit_code == 1, result.output
    assert "records 13..14 of the central store are covered by no head that key signed" in (
        result.output), result.output
    assert "missing locally" not in result.output
    with PassLog(db, key=key) as log:  # the installation writes on: its sync is refused,
        add_session(log)  # and neither it nor verify blames the local log for the store's
    refused = _smp("sessions", "sync", "--to", url)
    assert refused.exit_code == 1, refused.output
    assert "records 13..14 of log" in refused.output and "covered by no head" in refused.output
    assert "rewritten or forked" not in refused.output
    checked = _smp("sessions", "verify", "--against", url)
    assert checked.exit_code == 1, checked.output
    assert ("record 13: the local log differs from the central store, whose records 13..14 are "
            "covered by no head its registered key signed") in checked.output, checked.output


def test_records_the_installation_signed_but_removed_locally_are_missing_locally(tmp_path,
                                                                                 url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    shutil.copyfile(db, tmp_path / "old.sqlite")
    with PassLog(db, key=KEY) as log:
        add_session(log)
    with PassLog(db, readonly=True) as log:
        sync(log, url, KEY, batch_records=4)  # every batch's head signed or none, then 12
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE smp_logs SET head_signature = NULL")  # the head row stays kept
    with PassLog(tmp_path / "old.sqlite", readonly=True) as log:
        assert compare(log, url).problem.startswith("record 7: missing locally")


def test_sync_takes_the_public_key_alone(tmp_path, url):
    db = make_log(tmp_path / "passlog.sqlite", sessions=1)
    with PassLog(db, readonly=True) as log:
        assert sync(log, url, PublicKey(KEY.public.hex)).sent == 6
        assert compare(log, url).problem is None
