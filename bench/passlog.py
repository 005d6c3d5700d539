"""Pass-log benchmark: durable pass commit p50/p99, export and verify of 100k passes.

    .venv/bin/python bench/passlog.py [--passes 100000] [--commits 2000] [--dir DIR]

Commit: one `begin_pass` and one `end_pass`, each its own WAL transaction with
`synchronous=FULL` (an fsync per commit), timed separately and as a pair. The 100k-pass log is
filled in bulk transactions (setup, not measured), then export (JSONL and CSV to an in-memory
buffer) and verify are timed; medians of --repeat runs. Goals: commit p99 < 2 ms, export and
verify of 100k passes < 2 s each. Run it on the disk the log will live on (--dir): an fsync on
tmpfs costs nothing and flatters the commit figures.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smpdevice.passlog import PassLog, PassStats

SESSION = dict(technician="bench", client_ref="C-0001", session_kind="base_density",
               pen_serial="PEN-0001", firmware_version="1.0.0", calibration_id="cal-1",
               profile_hash="0" * 64,
               screening={"open_sores": False, "keloid_tendency": False}, simulated=True)


def _stats() -> PassStats:
    stats = PassStats()
    stats.counters(0, 0)
    for depth_mm in (0.38, 0.40, 0.42):
        stats.add(depth_mm, 90.0)
    stats.counters(270, 30)
    return stats


def _one_pass(log: PassLog, session_id: str, index: int, stats: PassStats) -> None:
    now = datetime.now(UTC)
    pass_id = log.begin_pass(session_id, index=index, zone="top", depth_mm=0.4, speed_hz=90.0,
                             duty_pct=40.0, period_ms=100.0, started_at=now)
    log.end_pass(pass_id, outcome="completed", stats=stats, ended_at=now)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_commit(directory: str, commits: int) -> None:
    stats = _stats()
    begin_ms, end_ms, pair_ms = [], [], []
    with PassLog(Path(directory) / "commit.sqlite") as log:
        session_id = log.open_session(**SESSION)
        for i in range(commits):
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            pass_id = log.begin_pass(session_id, index=i, zone="top", depth_mm=0.4,
                                     speed_hz=90.0, duty_pct=40.0, period_ms=100.0,
                                     started_at=now)
            t1 = time.perf_counter()
            log.end_pass(pass_id, outcome="completed", stats=stats, ended_at=now)
            t2 = time.perf_counter()
            begin_ms.append((t1 - t0) * 1e3)
            end_ms.append((t2 - t1) * 1e3)
            pair_ms.append((t2 - t0) * 1e3)
    print(f"commit ({commits} passes, WAL, synchronous=FULL):")
    for name, values in (("begin_pass", begin_ms), ("end_pass", end_ms),
                         ("begin+end", pair_ms)):
        print(f"  {name:<11} p50 {_pct(values, 0.50):6.3f} ms   p99 {_pct(values, 0.99):6.3f} ms"
              f"   max {max(values):6.3f} ms")


def bench_bulk(directory: str, passes: int, repeat: int) -> None:
    path = Path(directory) / "bulk.sqlite"
    stats = _stats()
    t0 = time.perf_counter()
    with PassLog(path) as log:
        per_session = 200
        for start in range(0, passes, per_session):
            with log._tx():  # setup only: many passes per transaction
                session_id = log.open_session(**SESSION)
                for i in range(start, min(start + per_session, passes)):
                    _one_pass(log, session_id, i - start, stats)
    print(f"setup: {passes} passes written in {time.perf_counter() - t0:.1f} s "
          f"({path.stat().st_size / 1e6:.0f} MB)")

    def timed(fn) -> float:
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        return statistics.median(runs)

    with PassLog(path, readonly=True) as log:
        for fmt in ("jsonl", "csv"):
            seconds = timed(lambda fmt=fmt: log.export(fmt, io.StringIO()))
            print(f"export {fmt:<5} {passes} passes: {seconds:.3f} s (median of {repeat})")
        seconds = timed(lambda: _check(log.verify()))
        print(f"verify       {passes} passes: {seconds:.3f} s (median of {repeat})")
    seconds = timed(lambda: PassLog(path).close())
    print(f"open (writer: migrate check + crash recovery scan): {seconds * 1e3:.1f} ms")


def _check(broken) -> None:
    if broken is not None:
        raise SystemExit(f"verify failed: {broken}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="directory for the test files "
                        "(default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        bench_commit(directory, args.commits)
        bench_bulk(directory, args.passes, args.repeat)


if __name__ == "__main__":
    main()
