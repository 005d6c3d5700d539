"""Pass-log benchmark: signed commits vs the fsync floor, verify, export and central sync.

    .venv/bin/python bench/passlog.py [--commits 2000] [--verify-records 1000000]
                                      [--export-passes 100000] [--sync-records 100000]
                                      [--pg postgresql://...] [--dir DIR]
                                      [--only commit,verify,export,sync]

- commit: one `begin_pass` + one `end_pass`, each its own WAL transaction with
  `synchronous=FULL` (one fsync per commit) and an Ed25519-signed head; the floor is two raw
  SQLite INSERT + COMMITs with the same settings in the same directory, run right after each
  pass (interleaved: both meet the same disk and load). Overhead = pass - floor, at p50 and
  p99; the CPU time of each (thread time) shows what the pass adds besides waiting. Goal:
  p99 <= 2 ms, or floor + under 2 ms where the disk's own fsync is slower.
- verify: `PassLog.audit` (chain, signed heads, head, anchors) of a log of N records, beside
  the time to only read those rows. Goal: 1,000,000 records <= 5 s.
- export: CSV (and JSONL) of N passes, pseudonymous, beside the time to only read their
  records. Goal: 100,000 passes <= 2 s.
- sync: N records to a local PostgreSQL (`--pg URL`, else a throw-away server started like the
  tests do). Goal: 100,000 records <= 30 s.

Big logs are filled in bulk (setup, not measured) with exactly the records and signed heads the
writer produces. Run it on the disk the log will live on (--dir): an fsync on tmpfs costs
nothing and flatters the commit figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smpdevice.passlog import PassLog, PassStats
from smpdevice.records import sqlite_signing
from smpdevice.records.chain import record_hash
from smpdevice.records.keys import InstallationKey
from smpdevice.records.model import canonical

SESSION = dict(technician="bench", client_ref="C-0001", session_kind="base_density",
               pen_serial="PEN-0001", firmware_version="1.0.0", calibration_id="cal-1",
               profile_hash="0" * 64,
               screening={"open_sores": False, "keloid_tendency": False}, simulated=True)
KEY = InstallationKey.generate()
WARM_UP = 50  # passes not measured (file growth, caches)


def _stats() -> PassStats:
    stats = PassStats()
    stats.counters(0, 0)
    for depth_mm, speed_hz in ((0.38, 90.0), (0.40, 90.0), (0.42, 0.0)):
        stats.add(depth_mm, speed_hz)
    stats.counters(270, 30)
    return stats


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _line(name: str, values: list[float]) -> str:
    return (f"  {name:<22} p50 {_pct(values, 0.50):6.3f} ms   p99 {_pct(values, 0.99):6.3f} ms"
            f"   max {max(values):6.3f} ms")


def bench_commit(directory: Path, commits: int) -> None:
    """Passes and their floor, interleaved (so both meet the same disk and the same load)."""
    stats = _stats()
    pair_ms, commit_ms, floor_ms, floor1_ms, pair_cpu_ms, floor_cpu_ms = [], [], [], [], [], []
    raw = sqlite3.connect(directory / "floor.sqlite", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE t (x TEXT)")

    def raw_commit() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.thread_time()
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("INSERT INTO t VALUES (?)", ("x" * 300,))
        raw.execute("COMMIT")
        return (time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3

    with PassLog(directory / "commit.sqlite", key=KEY) as log:
        session_id = log.open_session(**SESSION)
        for i in range(commits + WARM_UP):
            now = datetime.now(UTC)
            t0, c0 = time.perf_counter(), time.thread_time()
            pass_id = log.begin_pass(session_id, index=i, zone="top", depth_mm=0.4,
                                     speed_hz=90.0, duty_pct=40.0, period_ms=100.0,
                                     started_at=now)
            t1 = time.perf_counter()
            log.end_pass(pass_id, outcome="completed", stats=stats, ended_at=now)
            t2, c2 = time.perf_counter(), time.thread_time()
            (first, first_cpu), (second, second_cpu) = raw_commit(), raw_commit()
            if i < WARM_UP:
                continue
            pair_ms.append((t2 - t0) * 1e3)
            commit_ms += [(t1 - t0) * 1e3, (t2 - t1) * 1e3]
            floor_ms.append(first + second)
            floor1_ms += [first, second]
            pair_cpu_ms.append((c2 - c0) * 1e3)
            floor_cpu_ms.append(first_cpu + second_cpu)
    raw.close()
    sign_ms = []
    for _ in range(commits):
        t0 = time.perf_counter()
        KEY.sign(b"smpdevice-head/1\n" + b"0" * 120)
        sign_ms.append((time.perf_counter() - t0) * 1e3)
    print(f"commit ({commits} passes, each interleaved with its floor; WAL, synchronous=FULL, "
          "every head signed):")
    print(_line("pass (begin+end)", pair_ms))
    print(_line("floor: 2 raw commits", floor_ms))
    print(_line("one pass call", commit_ms))
    print(_line("floor: 1 raw commit", floor1_ms))
    print(_line("one Ed25519 signature", sign_ms))
    # CPU time of the calling thread: what the pass adds besides waiting for the disk (and
    # for the CPU, on a loaded machine), so it moves far less with the load than wall time.
    print(_line("CPU: pass", pair_cpu_ms))
    print(_line("CPU: 2 raw commits", floor_cpu_ms))
    for q in (0.50, 0.99):
        print(f"  overhead p{q * 100:.0f} (pass - floor): "
              f"{_pct(pair_ms, q) - _pct(floor_ms, q):6.3f} ms")


def fill(path: Path, records: int) -> int:
    """A log of about `records` records (sessions of 100 passes), as the writer makes it."""
    with PassLog(path, key=KEY) as log:
        log.open_session(**SESSION)  # creates the schema, registers the key
        conn, log_id = log._conn, log.log_id
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    seq, prev = conn.execute("SELECT seq, hash FROM records ORDER BY seq DESC").fetchone()
    session_id = conn.execute("SELECT session_id FROM records").fetchone()[0]
    figures = _stats().figures()
    at = datetime.now(UTC).isoformat()
    rows, heads, index = [], [], 0
    while seq < records:
        pass_id = f"P{seq:016x}"
        for kind, body in (
            ("pass_begin", {"index": index, "zone": "top", "depth_mm": 0.4, "speed_hz": 90.0,
                            "duty_pct": 40.0, "period_ms": 100.0, "started_at": at,
                            "simulated": True}),
            ("pass_end", {"outcome": "completed", "ended_at": at, "fault_code": None,
                          "fault_names": [], "stats": figures, "recovered": False}),
        ):
            seq += 1
            text = canonical(body)
            digest = record_hash(seq, kind, session_id, pass_id, at, text, prev)
            rows.append((seq, kind, session_id, pass_id, at, text, prev, digest))
            if seq % sqlite_signing.SIGN_EVERY_RECORDS == 0:
                heads.append((seq, digest))
            prev = digest
        index += 1
    conn.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    for head_seq, digest in heads:
        sqlite_signing.write_head(conn, KEY, log_id, head_seq, digest, reason="interval")
    sqlite_signing.write_head(conn, KEY, log_id, seq, prev)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return seq


def timed(fn, repeat: int = 3) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return sorted(runs)[len(runs) // 2]


def _read_floor(path: Path, query: str) -> float:
    """Seconds to read what a verify or an export must read, doing nothing with it."""
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return timed(lambda: sum(1 for _ in conn.execute(query)), repeat=1)
    finally:
        conn.close()


def bench_verify(directory: Path, records: int) -> None:
    path = directory / "verify.sqlite"
    count = fill(path, records)
    trusted = {KEY.fingerprint: KEY.public}
    with PassLog(path, readonly=True) as log:
        result = log.audit(trusted=trusted, anchors=False)
        assert result.ok, result.problem
        seconds = timed(lambda: log.audit(trusted=trusted, anchors=False), repeat=1)
    floor = _read_floor(path, "SELECT seq, kind, session_id, pass_id, written_at, body, "
                              "prev_hash, hash FROM records ORDER BY seq")
    print(f"verify {count:,} records ({result.signatures_checked} signed heads): "
          f"{seconds:.2f} s; baseline: reading them (one process, no hashing) {floor:.2f} s")


def bench_export(directory: Path, passes: int) -> None:
    path = directory / "export.sqlite"
    fill(path, passes * 2)
    floor = _read_floor(path, "SELECT b.session_id, b.pass_id, b.body, e.body FROM records b "
                              "LEFT JOIN records e ON e.kind = 'pass_end' AND e.pass_id = "
                              "b.pass_id WHERE b.kind = 'pass_begin' ORDER BY b.seq")
    with PassLog(path, readonly=True) as log:
        for fmt in ("csv", "jsonl"):
            out = io.StringIO()
            count = log.export(fmt, out)
            seconds = timed(lambda fmt=fmt: log.export(fmt, io.StringIO()))
            print(f"export {fmt:<5} {count:,} passes (pseudonymous): {seconds:.2f} s "
                  f"(median of 3); baseline: reading their records {floor:.2f} s")


def bench_sync(directory: Path, records: int, url: str | None) -> None:
    from smpdevice.records.central import sync

    path = directory / "sync.sqlite"
    count = fill(path, records)
    with contextlib.ExitStack() as stack:
        if url is None:
            from tests.smpdevice.postgres_server import running_server, server_bindir

            bindir = server_bindir()
            if bindir is None:
                print("sync: skipped (no PostgreSQL server binaries; give --pg URL)")
                return
            url = stack.enter_context(running_server(bindir))
        with PassLog(path, readonly=True) as log:
            t0 = time.perf_counter()
            result = sync(log, url, KEY)
            seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            again = sync(log, url, KEY)
            idle = time.perf_counter() - t0
    print(f"sync {result.sent:,} of {count:,} records to PostgreSQL: {seconds:.2f} s; "
          f"a second sync (nothing new, {again.sent} sent): {idle:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--verify-records", type=int, default=1_000_000)
    parser.add_argument("--export-passes", type=int, default=100_000)
    parser.add_argument("--sync-records", type=int, default=100_000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL for the sync figure")
    parser.add_argument("--dir", default=None, help="directory for the test files "
                        "(default: a temporary directory)")
    parser.add_argument("--only", default="commit,verify,export,sync",
                        help="which figures, comma-separated (default: all four)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        directory = Path(name)
        if "commit" in only:
            bench_commit(directory, args.commits)
        if "verify" in only:
            bench_verify(directory, args.verify_records)
        if "export" in only:
            bench_export(directory, args.export_passes)
        if "sync" in only:
            bench_sync(directory, args.sync_records, args.pg)


if __name__ == "__main__":
    main()
