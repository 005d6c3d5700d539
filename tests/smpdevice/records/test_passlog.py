"""The pass log: round trip, the hash chain, crash recovery, migrations, storage failures."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import smpdevice.records.export as records_export
from smpdevice.errors import SmpError
from smpdevice.passlog import (
    EXPORT_FIELDS,
    GENESIS_HASH,
    MIGRATIONS,
    SCHEMA_VERSION,
    PassLog,
    PassLogError,
    PassOutcome,
    PassStats,
    record_hash,
)

T0 = datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
SCREENING = {"open_sores": False, "eczema": False, "keloid_tendency": False}
REPO = Path(__file__).resolve().parents[3]


ENVELOPE = {"sha256": "e" * 64, "zones": {"top": {"dermal_ceiling_mm": 0.9}}}


def open_session(log: PassLog, client_ref: str = "C-0042", *, simulated: bool = False,
                 envelope: dict | None = ENVELOPE) -> str:
    return log.open_session(technician="tech-1", client_ref=client_ref,
                            session_kind="base_density", pen_serial="SMP-0001",
                            firmware_version="1.2.0", calibration_id="cal-7",
                            profile_hash="ab" * 32, screening=SCREENING, simulated=simulated,
                            envelope=envelope)


def begin(log: PassLog, session_id: str, index: int = 0, zone: str = "top") -> str:
    return log.begin_pass(session_id, index=index, zone=zone, depth_mm=0.4, speed_hz=90.0,
                          duty_pct=40.0, period_ms=120.0,
                          started_at=T0 + timedelta(seconds=10 * index))


def stats(depths=(0.38, 0.40, 0.45), strokes=300, impressions=30) -> PassStats:
    s = PassStats()
    s.counters(1000, 100)
    for depth_mm in depths:
        s.add(depth_mm, 90.0)
    s.counters(1000 + strokes, 100 + impressions)
    return s


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "passlog.sqlite"


def filled(db: Path) -> tuple[str, list[str]]:
    """A closed session with three passes: completed, fault, estop."""
    with PassLog(db) as log:
        sid = open_session(log)
        ids = []
        for i, (outcome, code, names) in enumerate([
            (PassOutcome.completed, None, None), (PassOutcome.fault, 0x21, ["jam", "overcurrent"]),
            (PassOutcome.estop, None, None),
        ]):
            pid = begin(log, sid, i)
            log.end_pass(pid, outcome=outcome, stats=stats(), ended_at=T0 + timedelta(
                seconds=10 * i + 3), fault_code=code, fault_names=names)
            ids.append(pid)
        log.close_session(sid, closed_at=T0 + timedelta(minutes=5), summary={"passes": 3})
    return sid, ids


def raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


# --- stats ---------------------------------------------------------------------------------


def test_pass_stats_aggregate_incrementally():
    s = stats()
    assert (s.samples, s.depth_min_mm, s.depth_max_mm) == (3, 0.38, 0.45)
    assert s.depth_mean_mm == pytest.approx(0.41)
    assert s.speed_mean_hz == 90.0
    assert (s.strokes, s.impressions) == (300, 30)
    assert PassStats().figures()["depth_mean_mm"] is None


def test_counters_wrap():
    s = PassStats()
    s.counters(2**32 - 10, 5)
    s.counters(20, 7)
    assert (s.strokes, s.impressions) == (30, 2)


def test_counters_restarted_by_a_pen_reboot_count_only_the_new_strokes():
    """A brownout mid-pass restarts the pen's counters at 0: no 4.3-billion-stroke pass."""
    s = PassStats()
    s.counters(1000, 10)
    s.counters(1500, 15)
    s.counters(40, 1)      # rebooted: counting again from 0
    s.counters(100, 2)
    assert (s.strokes, s.impressions) == (500 + 40 + 60, 5 + 1 + 1)


def test_stats_survive_figures_round_trip():
    s = stats()
    assert PassStats.from_figures(s.figures()).figures() == s.figures()


# --- round trip ----------------------------------------------------------------------------


def test_round_trip(db):
    sid, ids = filled(db)
    with PassLog(db) as log:
        [session] = log.sessions()
        assert (session.session_id, session.client_ref, session.pen_serial,
                session.firmware_version, session.calibration_id) == (
            sid, "C-0042", "SMP-0001", "1.2.0", "cal-7")
        assert session.screening == SCREENING and session.pass_count == 3
        assert session.closed_at == (T0 + timedelta(minutes=5)).isoformat()
        assert session.summary == {"passes": 3}
        full = log.session(sid[:6])
        assert [p.pass_id for p in full.passes] == ids
        fault = full.passes[1]
        assert (fault.outcome, fault.fault_code, fault.fault_names) == (
            "fault", 0x21, ["jam", "overcurrent"])
        assert (fault.depth_min_mm, fault.depth_max_mm, fault.strokes, fault.impressions,
                fault.samples) == (0.38, 0.45, 300, 30, 3)
        assert fault.depth_mean_mm == pytest.approx(0.41)
        assert (fault.zone, fault.depth_mm, fault.speed_hz, fault.duty_pct, fault.period_ms) == (
            "top", 0.4, 90.0, 40.0, 120.0)
        assert fault.started_at == (T0 + timedelta(seconds=10)).isoformat()
        assert log.passes() == full.passes and log.passes("S-none") == []
        assert log.verify() is None
        assert log.head()[0] == 1 + 3 * 2 + 1


def test_a_begun_pass_is_durable_before_it_ends(db):
    with PassLog(db) as log:
        pid = begin(log, open_session(log))
        with PassLog(db, readonly=True) as reader:  # another connection sees it at once
            [p] = reader.passes()
            assert (p.pass_id, p.outcome) == (pid, None)
        log.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)


def test_unknown_session_is_a_clear_error(db):
    filled(db)
    with PassLog(db) as log, pytest.raises(Exception, match="no session 'Snope'"):
        log.session("Snope")


@pytest.mark.parametrize("misuse", ["end-twice", "unknown-pass", "closed-session",
                                    "close-with-pass-open"])
def test_misuse_is_refused_and_nothing_is_written(db, misuse):
    with PassLog(db) as log:
        sid = open_session(log)
        pid = begin(log, sid)
        if misuse == "end-twice":
            log.end_pass(pid, outcome="stopped", stats=stats(), ended_at=T0)
            call, match = lambda: log.end_pass(pid, outcome="stopped", stats=stats(),
                                               ended_at=T0), "already ended"
        elif misuse == "unknown-pass":
            call, match = lambda: log.checkpoint("Pnope", stats()), "no pass Pnope"
        elif misuse == "closed-session":
            log.end_pass(pid, outcome="stopped", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0, summary={})
            call, match = lambda: begin(log, sid, 1), "is closed"
        else:
            call, match = lambda: log.close_session(sid, closed_at=T0, summary={}), \
                "still has 1 pass"
        before = log.head()
        with pytest.raises(PassLogError, match=match):
            call()
        assert log.head() == before and log.verify() is None


def test_programming_errors_are_value_errors(db):
    with PassLog(db) as log:
        sid = open_session(log)
        pid = begin(log, sid)
        with pytest.raises(ValueError, match="needs its fault_code"):
            log.end_pass(pid, outcome="fault", stats=stats(), ended_at=T0)
        with pytest.raises(ValueError, match="timezone-aware"):
            log.end_pass(pid, outcome="stopped", stats=stats(), ended_at=datetime(2025, 1, 1))
        with pytest.raises(ValueError):
            log.end_pass(pid, outcome="exploded", stats=stats(), ended_at=T0)


def test_open_uses_smp_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    with PassLog.open() as log:
        assert log.path == tmp_path / "data" / "passlog.sqlite"
    assert (tmp_path / "data" / "passlog.sqlite").is_file()


def test_settings_are_wal_and_full_sync(db):
    with PassLog(db) as log:
        assert log._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# --- the chain -----------------------------------------------------------------------------


def test_edited_row_is_caught_and_named(db):
    filled(db)
    with raw(db) as conn:
        conn.execute("UPDATE records SET body = replace(body, '\"depth_max_mm\":0.45', "
                     "'\"depth_max_mm\":0.4') WHERE seq = 5")
        assert conn.total_changes == 1
    with PassLog(db, readonly=True) as log:
        broken = log.verify()
    assert broken is not None and broken.record_id == 5
    assert "was altered: its contents do not match its hash" in str(broken)
    assert "(pass_end of pass" in broken.problem


def test_edited_and_rehashed_row_breaks_the_next_link(db):
    filled(db)
    with raw(db) as conn:
        seq, kind, sid, pid, at, body, prev, _ = conn.execute(
            "SELECT * FROM records WHERE seq = 2").fetchone()
        edited = body.replace('"depth_mm":0.4', '"depth_mm":0.3')
        assert kind == "pass_begin" and edited != body
        conn.execute("UPDATE records SET body = ?, hash = ? WHERE seq = 2",
                     (edited, record_hash(seq, kind, sid, pid, at, edited, prev)))
    with PassLog(db, readonly=True) as log:
        broken = log.verify()
    assert broken is not None and broken.record_id == 3
    assert "does not link to record 2" in broken.problem


def test_deleted_row_is_caught(db):
    filled(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq = 4")
    with PassLog(db, readonly=True) as log:
        broken = log.verify()
    assert broken is not None and broken.record_id == 5
    assert "record 4 is missing (deleted)" in broken.problem


def test_truncated_tail_is_caught(db):
    filled(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM records WHERE seq >= 7")
    with PassLog(db, readonly=True) as log:
        broken = log.verify()
    assert broken is not None and "the chain ends at record 6 but its head says record 8" \
        in broken.problem


def test_chain_starts_at_genesis(db):
    filled(db)
    with raw(db) as conn:
        assert conn.execute("SELECT prev_hash FROM records WHERE seq = 1").fetchone()[0] \
            == GENESIS_HASH


# --- crash recovery ------------------------------------------------------------------------


def test_pass_never_ended_is_recovered_with_the_checkpoint_figures(db):
    with PassLog(db) as log:
        sid = open_session(log)
        done = begin(log, sid, 0)
        log.end_pass(done, outcome="completed", stats=stats(), ended_at=T0)
        pid = begin(log, sid, 1)
        log.checkpoint(pid, stats((0.3, 0.5), strokes=10, impressions=1))
        log.checkpoint(pid, stats((0.35, 0.42, 0.44), strokes=120, impressions=12))
        assert log.recovered == []
    # closed without end_pass: the same as the process dying
    with PassLog(db) as log:
        assert log.recovered == [pid]
        p = log.passes()[1]
        assert (p.outcome, p.recovered, p.samples, p.depth_min_mm, p.depth_max_mm, p.strokes,
                p.impressions) == ("controller_crashed", True, 3, 0.35, 0.44, 120, 12)
        assert p.depth_mean_mm == pytest.approx((0.35 + 0.42 + 0.44) / 3)
        assert p.ended_at is not None and p.ended_at >= p.started_at
        assert log.passes()[0].outcome == "completed"  # nothing committed is lost
        assert log.verify() is None
        assert log._conn.execute("SELECT count(*) FROM progress").fetchone()[0] == 0
    with PassLog(db) as log:
        assert log.recovered == []


def test_recovery_without_a_checkpoint_ends_the_pass_at_its_start(db):
    with PassLog(db) as log:
        pid = begin(log, open_session(log))
    with PassLog(db) as log:
        [p] = log.passes()
        assert (log.recovered, p.outcome, p.samples, p.ended_at) == (
            [pid], "controller_crashed", 0, p.started_at)


def test_readers_never_recover_a_live_pass(db):
    with PassLog(db) as log:
        pid = begin(log, open_session(log))
        with pytest.raises(PassLogError, match="is in use by pid"):
            PassLog(db)
        with PassLog(db, readonly=True) as reader:
            assert reader.recovered == [] and reader.passes()[0].outcome is None
        log.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)


def test_sigkill_mid_pass_then_restart(db):
    script = textwrap.dedent("""
        import sys, time
        from datetime import UTC, datetime
        from smpdevice.passlog import PassLog, PassStats
        log = PassLog(sys.argv[1])
        sid = log.open_session(technician="t", client_ref="C-1", session_kind="base_density",
                               pen_serial="SMP-1", firmware_version="1", calibration_id="c",
                               profile_hash="h", screening={}, simulated=True)
        kw = dict(zone="top", depth_mm=0.4, speed_hz=90.0, duty_pct=40.0, period_ms=120.0,
                  started_at=datetime.now(UTC))
        done = log.begin_pass(sid, index=0, **kw)
        s = PassStats(); s.counters(0, 0); s.add(0.41, 91.0); s.counters(50, 5)
        log.end_pass(done, outcome="completed", stats=s, ended_at=datetime.now(UTC))
        live = log.begin_pass(sid, index=1, **kw)
        s = PassStats(); s.counters(0, 0); s.add(0.39, 89.0); s.add(0.43, 93.0); s.counters(77, 7)
        log.checkpoint(live, s)
        print(done, live, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = proc.stdout.readline()
        done, live = line.split()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with PassLog(db) as log:  # the lock died with the process
        assert log.recovered == [live]
        first, second = log.passes()
        assert (first.pass_id, first.outcome, first.strokes) == (done, "completed", 50)
        assert (second.pass_id, second.outcome, second.samples, second.depth_min_mm,
                second.depth_max_mm, second.strokes, second.impressions) == (
            live, "controller_crashed", 2, 0.39, 0.43, 77, 7)
        assert log.verify() is None


# --- schema versions -----------------------------------------------------------------------


def make_v1_file(db: Path) -> tuple[str, str]:
    """A file as version 1 wrote it: a session, an ended pass and one never ended."""
    conn = raw(db)
    conn.execute("PRAGMA journal_mode=WAL")
    version, description, statements = MIGRATIONS[0]
    assert version == 1
    for statement in statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, '2024-01-01T00:00:00+00:00', ?)",
                 (description,))
    prev = GENESIS_HASH
    rows = [
        ("session_open", None, {"technician": "t", "client_ref": "C-9", "session_kind":
                                "base_density", "pen_serial": "SMP-9", "firmware_version": "0.9",
                                "calibration_id": "c", "profile_hash": "h", "screening": {},
                                "opened_at": T0.isoformat()}),
        ("pass_begin", "Pold1", {"index": 0, "zone": "top", "depth_mm": 0.4, "speed_hz": 90,
                                 "duty_pct": 40, "period_ms": 120,
                                 "started_at": T0.isoformat()}),
        ("pass_end", "Pold1", {"outcome": "completed", "ended_at": T0.isoformat(),
                               "fault_code": None, "fault_names": [], "recovered": False,
                               "stats": stats().figures()}),
        ("pass_begin", "Pold2", {"index": 1, "zone": "top", "depth_mm": 0.4, "speed_hz": 90,
                                 "duty_pct": 40, "period_ms": 120,
                                 "started_at": T0.isoformat()}),
    ]
    for seq, (kind, pid, body) in enumerate(rows, start=1):
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        digest = record_hash(seq, kind, "Sold", pid, T0.isoformat(), text, prev)
        conn.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     (seq, kind, "Sold", pid, T0.isoformat(), text, prev, digest))
        prev = digest
    conn.close()
    return "Pold1", "Pold2"


def test_an_older_file_is_migrated_and_keeps_everything(db):
    ended, unended = make_v1_file(db)
    with PassLog(db, readonly=True) as reader:  # readers read an older file as it is
        assert [p.pass_id for p in reader.passes()] == [ended, unended]
    with PassLog(db) as log:
        versions = [r[0] for r in log._conn.execute("SELECT version FROM schema_version")]
        assert versions == [1, 2, 3, 4] and SCHEMA_VERSION == 4
        assert log.recovered == [unended]
        first, second = log.passes()
        assert (first.outcome, first.strokes) == ("completed", 300)
        assert second.outcome == "controller_crashed"
        assert log.verify() is None
        pid = begin(log, log.sessions()[0].session_id, 2)  # and it is writable
        log.end_pass(pid, outcome="completed", stats=stats(), ended_at=T0)
        assert log.verify() is None


def test_a_newer_file_is_refused(db):
    filled(db)
    with raw(db) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, '2030-01-01', 'future')")
    for readonly in (False, True):
        with pytest.raises(PassLogError, match=r"written by a newer smpdevice \(log schema 99; "
                                               r"this one reads up to 4\). Upgrade smpdevice"):
            PassLog(db, readonly=readonly)


def test_a_file_that_is_not_a_pass_log_is_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    with raw(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(PassLogError, match="SQLite file but not a pass log"):
        PassLog(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(PassLogError, match="not a pass log or is damaged"):
        PassLog(garbage)


# --- storage failures ----------------------------------------------------------------------


class FailingDisk:
    """Stands in for the connection: fails every write the way SQLite does on a full disk."""

    def __init__(self, conn: sqlite3.Connection, message: str):
        self._conn, self._message = conn, message

    def execute(self, sql: str, *args):
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COMMIT")):
            raise sqlite3.OperationalError(self._message)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


@pytest.mark.parametrize(("message", "hint"), [
    ("database or disk is full", "the disk is full: free space on it"),
    ("attempt to write a readonly database", "read-only"),
    ("disk I/O error", "check the disk and the file"),
])
@pytest.mark.parametrize("call", ["open_session", "begin_pass", "checkpoint", "end_pass"])
def test_write_failures_become_pass_log_errors(db, mocker, message, hint, call):
    with PassLog(db) as log:
        sid = open_session(log)
        pid = begin(log, sid)
        before = log.head()
        mocker.patch.object(log, "_conn", FailingDisk(log._conn, message))
        calls = {
            "open_session": lambda: open_session(log),
            "begin_pass": lambda: begin(log, sid, 1),
            "checkpoint": lambda: log.checkpoint(pid, stats()),
            "end_pass": lambda: log.end_pass(pid, outcome="completed", stats=stats(),
                                             ended_at=T0),
        }
        with pytest.raises(PassLogError) as info:
            calls[call]()
        text = str(info.value)
        assert f"cannot write the pass log {db} ({message})" in text and hint in text
        assert "The needle must not run until the log can record." in text
        mocker.stopall()
        assert log.head() == before and log.verify() is None  # rolled back whole
        log.end_pass(pid, outcome="log_error", stats=stats(), ended_at=T0)  # disk is back
        assert log.passes()[0].outcome == "log_error"


def test_a_real_read_only_open_refuses_writes(db):
    filled(db)
    with PassLog(db, readonly=True) as log:
        with pytest.raises(PassLogError, match="read-only") as info:
            open_session(log)
        assert isinstance(info.value, SmpError)
        assert len(log.sessions()) == 1


def test_read_only_open_of_a_missing_file(tmp_path):
    with pytest.raises(PassLogError, match="no pass log at"):
        PassLog(tmp_path / "none.sqlite", readonly=True)


def test_closed_log_refuses_calls(db):
    log = PassLog(db)
    log.close()
    log.close()  # idempotent
    with pytest.raises(PassLogError, match="is closed"):
        log.sessions()


# --- export --------------------------------------------------------------------------------


def test_export_jsonl(db):
    sid, ids = filled(db)
    out = io.StringIO()
    with PassLog(db, readonly=True) as log:
        assert log.export("jsonl", out, identified=True) == 3
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [list(r) for r in rows] == [list(EXPORT_FIELDS)] * 3
    assert [r["pass_id"] for r in rows] == ids
    fault = rows[1]
    assert (fault["session_id"], fault["client_ref"], fault["outcome"], fault["fault_code"],
            fault["fault_names"], fault["recovered"], fault["strokes"], fault["depth_max_mm"],
            fault["speed_hz"], fault["zone"]) == (
        sid, "C-0042", "fault", 0x21, ["jam", "overcurrent"], False, 300, 0.45, 90.0, "top")


def test_export_csv(db):
    _, ids = filled(db)
    with PassLog(db) as log:
        pid = begin(log, open_session(log, "C-0043"), 0)  # in progress: empty figures
        out = io.StringIO()
        assert log.export("csv", out, identified=True) == 4
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0]) == list(EXPORT_FIELDS)
    assert [r["pass_id"] for r in rows] == [*ids, pid]
    assert (rows[1]["fault_names"], rows[1]["fault_code"], rows[1]["recovered"],
            rows[1]["depth_min_mm"]) == ("jam;overcurrent", "33", "false", "0.38")
    assert (rows[3]["outcome"], rows[3]["ended_at"], rows[3]["samples"],
            rows[3]["depth_min_mm"], rows[3]["client_ref"]) == ("", "", "0", "", "C-0043")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_is_the_same_without_sqlite_json_operators(db, monkeypatch, fmt):
    filled(db)
    with PassLog(db) as log:
        pid = begin(log, open_session(log))
        log.checkpoint(pid, stats())
    with PassLog(db) as log:  # one recovered pass too
        fast = io.StringIO()
        log.export(fmt, fast)
        monkeypatch.setattr(records_export, "SQL_EXPORT", False)
        slow = io.StringIO()
        log.export(fmt, slow)
    assert fast.getvalue() == slow.getvalue() and fast.getvalue().count("\n") >= 4


def test_export_unknown_format(db):
    with PassLog(db) as log, pytest.raises(Exception, match="use jsonl or csv"):
        log.export("xml", io.StringIO())  # type: ignore[arg-type]


# --- simulated and envelope (issue 11 item 8) --------------------------------------------------


def test_simulated_and_envelope_are_in_the_header_and_every_pass(db):
    with PassLog(db) as log:
        real = open_session(log, "C-REAL", simulated=False)
        log.end_pass(begin(log, real), outcome="completed", stats=stats(), ended_at=T0)
        sim = open_session(log, "C-SIM", simulated=True, envelope=None)
        log.end_pass(begin(log, sim), outcome="completed", stats=stats(), ended_at=T0)
        bodies = [json.loads(b) for (b,) in log._conn.execute(
            "SELECT body FROM records WHERE kind IN ('session_open', 'pass_begin') ORDER BY seq")]
        assert [b["simulated"] for b in bodies] == [False, False, True, True]  # chained
        assert bodies[0]["envelope"] == ENVELOPE and bodies[2]["envelope"] is None
        assert log.verify() is None
    with PassLog(db, readonly=True) as log:
        first, second = log.sessions()
        assert (first.simulated, first.envelope_sha256, first.envelope) == (False, "e" * 64,
                                                                            ENVELOPE)
        assert (second.simulated, second.envelope_sha256) == (True, None)
        assert [p.simulated for p in log.passes()] == [False, True]
        assert log.session(sim).passes[0].simulated is True


@pytest.mark.parametrize("bad", [None, 0, 1, "false", "yes"])
def test_simulated_must_be_a_real_bool(db, bad):
    with PassLog(db) as log, pytest.raises(ValueError, match="simulated must be True or False"):
        open_session(log, simulated=bad)
    with PassLog(db) as log:
        assert log.sessions() == []


def test_a_bad_envelope_record_is_refused(db):
    with PassLog(db) as log, pytest.raises(ValueError, match="envelope must be None or a dict"):
        open_session(log, envelope={"zones": {}})


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_exports_carry_simulated_and_the_envelope_hash(db, fmt):
    with PassLog(db) as log:
        for simulated in (False, True):
            sid = open_session(log, simulated=simulated)
            log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
        out = io.StringIO()
        log.export(fmt, out)
    if fmt == "jsonl":
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [(r["simulated"], r["envelope_sha256"]) for r in rows] == [
            (False, "e" * 64), (True, "e" * 64)]
    else:
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert [(r["simulated"], r["envelope_sha256"]) for r in rows] == [
            ("false", "e" * 64), ("true", "e" * 64)]


def test_an_older_log_reads_simulated_as_unknown(db):
    """Records written before the flag existed cannot be amended (they are chained): their
    `simulated` is None, exported as null / an empty CSV cell, never a guessed false."""
    make_v1_file(db)
    with PassLog(db) as log:
        assert {s.simulated for s in log.sessions()} == {None}
        assert {p.simulated for p in log.passes()} == {None}
        jsonl, text = io.StringIO(), io.StringIO()
        log.export("jsonl", jsonl)
        log.export("csv", text)
    assert {json.loads(line)["simulated"] for line in jsonl.getvalue().splitlines()} == {None}
    assert {r["simulated"] for r in csv.DictReader(io.StringIO(text.getvalue()))} == {""}
