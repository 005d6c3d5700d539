"""Every benchmark in one run, as one markdown table: each figure next to a baseline measured in
the same run on the same machine, and their ratio. Medians throughout.

    .venv/bin/python bench/run_all.py            # print the table (about 2 minutes)
    .venv/bin/python bench/run_all.py --write    # ... and write docs/performance.md
    make bench                                   # installs pymavlink, then runs this

Figures and their baselines:
- codec encode / decode frames/s (TELEMETRY, 4 KiB chunks) vs pymavlink v2 HEARTBEAT;
- setpoint round trip and E-stop confirmation through the controller, over a pseudo-terminal to
  `smp sim --pty` in another process, vs the raw pyserial echo round trip of the same frame over a
  pty (the floor);
- telemetry ingest: frames/s through the link's reader path (decode, dispatch, the controller's
  listener) vs the bare stream decoder on the same bytes; and at 1 kHz over the pty, frames
  received vs sent, and the controller's CPU use vs at 100 Hz;
- pass-log commit (begin_pass + end_pass, WAL, synchronous=FULL) vs one raw SQLite INSERT+COMMIT
  with the same settings in the same directory;
- start-up: `smp --help`, and a process that connects and handshakes with the pty simulator, vs
  `python -c pass`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"smp_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ROWS: list[tuple[str, str, float, str, float, str]] = []


def add(figure: str, value: float, unit: str, baseline: str, base: float,
        better: str = "lower") -> None:
    """One row; the ratio is figure / baseline (for rates, higher is better)."""
    ROWS.append((figure, unit, value, baseline, base, better))
    print(f"  {figure}: {_num(value)} {unit}  |  {baseline}: {_num(base)} {unit}  "
          f"|  x{value / base:.2f}", flush=True)


def _num(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}"


def median(values: list[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------------- codec


def run_codec(frames: int, repeats: int) -> None:
    codec = _load("codec")
    ours = codec.bench_ours(frames, 4096)
    peer = codec.bench_pymavlink(frames, 4096)
    if peer is None:
        print("  pymavlink is not installed (pip install -e '.[bench]'): codec rows skipped")
        return
    enc = [codec._rate(ours[0]) for _ in range(repeats)]
    dec = [codec._rate(ours[1]) for _ in range(repeats)]
    penc = [codec._rate(peer[0]) for _ in range(repeats)]
    pdec = [codec._rate(peer[1]) for _ in range(repeats)]
    add("codec encode (TELEMETRY)", median(enc), "frames/s", "pymavlink v2 HEARTBEAT encode",
        median(penc), "higher")
    add("codec stream decode (TELEMETRY)", median(dec), "frames/s",
        "pymavlink v2 parse_buffer", median(pdec), "higher")


# ------------------------------------------------------------------------------- latency


def run_latency(n: int) -> None:
    latency = _load("latency")
    floor = latency.echo_floor(n)
    figures = latency.sim_figures(n)
    floor_ms = median(floor) * 1e3
    add("PING -> PONG through the link (pty, simulator process)", median(figures["raw"]) * 1e3,
        "ms", "raw pyserial echo over a pty", floor_ms)
    add("setpoint round trip (controller, pty)", median(figures["setpoint"]) * 1e3, "ms",
        "raw pyserial echo over a pty", floor_ms)
    add("E-stop to confirmation (controller, pty)", median(figures["estop"]) * 1e3, "ms",
        "raw pyserial echo over a pty", floor_ms)
    estop_p99 = latency.pct(figures["estop"], 0.99) * 1e3
    add("E-stop to confirmation p99", estop_p99, "ms", "raw pyserial echo p99",
        latency.pct(floor, 0.99) * 1e3)
    ingest = figures["ingest"]
    hi, lo = ingest[1000], ingest[100]
    add("telemetry received at 1 kHz over the pty (3 s)", hi["received"], "frames",
        "frames received + lost (sent)", hi["received"] + hi["lost"], "higher")
    add("controller CPU at 1 kHz telemetry", hi["cpu_pct"], "% of a core",
        "controller CPU at 100 Hz telemetry", lo["cpu_pct"])



def run_ingest(frames: int, repeats: int) -> None:
    """The reader path in-process: decode + Link dispatch + the controller's listener."""
    codec = _load("codec")
    from firmware_protocol import StreamDecoder, encode
    from smpdevice.control import PenController
    from smpdevice.link import Link

    stream = b"".join(encode(codec._telemetry(i), 0) for i in range(frames))
    parts = [stream[i:i + 4096] for i in range(0, len(stream), 4096)]

    def bare() -> float:
        d = StreamDecoder()
        t0 = time.perf_counter()
        for p in parts:
            d.feed(p)
        return frames / (time.perf_counter() - t0)

    def controller_path() -> float:
        ctl = PenController("pensim://")
        link = Link(port=None)
        link.add_listener(ctl._on_pen_message)
        feed, dispatch = link.decoder.feed, link._dispatch
        t0 = time.perf_counter()
        for p in parts:
            for frame in feed(p):
                dispatch(frame)
        return frames / (time.perf_counter() - t0)

    add("telemetry ingest (decode + link + controller listener)",
        median([controller_path() for _ in range(repeats)]), "frames/s",
        "bare StreamDecoder on the same bytes", median([bare() for _ in range(repeats)]),
        "higher")


# ------------------------------------------------------------------------------- pass log


def run_passlog(commits: int) -> None:
    from smpdevice.passlog import PassLog, PassStats

    stats = PassStats()
    stats.counters(0, 0)
    stats.add(0.4, 90.0)
    stats.counters(270, 30)
    with tempfile.TemporaryDirectory(prefix="smp-bench-", dir=os.environ.get("SMP_BENCH_DIR")
                                     ) as tmp:
        pair = []
        with PassLog(Path(tmp) / "bench.sqlite") as log:
            sid = log.open_session(technician="bench", client_ref="C-0001",
                                   session_kind="base_density", pen_serial="SMP-BENCH",
                                   firmware_version="1.0.0", calibration_id="c",
                                   profile_hash="0" * 64, screening={"open_sores": False},
                                   simulated=True)
            for i in range(commits):
                now = datetime.now(UTC)
                t0 = time.perf_counter()
                pid = log.begin_pass(sid, index=i, zone="top", depth_mm=0.4, speed_hz=90.0,
                                     duty_pct=40.0, period_ms=100.0, started_at=now)
                log.end_pass(pid, outcome="completed", stats=stats, ended_at=now)
                pair.append(time.perf_counter() - t0)
        raw = []
        conn = sqlite3.connect(Path(tmp) / "raw.sqlite", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, body TEXT)")
        for i in range(commits):
            t0 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES (?, ?)", (i, "x" * 200))
            conn.execute("COMMIT")
            raw.append(time.perf_counter() - t0)
        conn.close()
    add("pass-log commit (begin_pass + end_pass, durable)", median(pair) * 1e3, "ms",
        "raw SQLite INSERT+COMMIT (WAL, FULL)", median(raw) * 1e3)
    ordered = sorted(pair)
    add("pass-log commit p99", ordered[int(0.99 * (len(ordered) - 1))] * 1e3, "ms",
        "raw SQLite INSERT+COMMIT p99", sorted(raw)[int(0.99 * (len(raw) - 1))] * 1e3)


# ------------------------------------------------------------------------------- start-up

CONNECT = """
import sys
from simulators.pen_model import PenModel
from smpdevice.control.calibration import Calibration
from smpdevice.control import PenController
model = PenModel(seed=3)
cal = Calibration.linear(pen_serial=model.serial, technician="bench",
                         offset_mm=-model.offset_mm, gain=model.gain)
PenController.connect(sys.argv[1], calibration=cal).close()
"""


def _wall(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return median(times)


def run_startup(repeats: int) -> None:
    latency = _load("latency")
    python = sys.executable
    smp = str(Path(python).with_name("smp"))
    floor = _wall([python, "-c", "pass"], repeats)
    add("`smp --help` (process start to exit)", _wall([smp, "--help"], repeats) * 1e3, "ms",
        "`python -c pass`", floor * 1e3)
    proc, path = latency.start_sim()
    try:
        connect = _wall([python, "-c", CONNECT, path], repeats)
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    add("process: import, connect + handshake over a pty, close", connect * 1e3, "ms",
        "`python -c pass`", floor * 1e3)


# ------------------------------------------------------------------------------- report


def markdown() -> str:
    lines = [
        "| figure | median | baseline (same run) | baseline median | ratio |",
        "|---|---:|---|---:|---:|",
    ]
    for figure, unit, value, baseline, base, better in ROWS:
        ratio = value / base if base else float("nan")
        note = " (higher is better)" if better == "higher" else ""
        lines.append(f"| {figure} | {_num(value)} {unit} | {baseline} | {_num(base)} {unit} | "
                     f"{ratio:.2f}x{note} |")
    return "\n".join(lines)


def machine() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared with other work), "
            f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")


PERF_DOC = """# Performance

The latest `bench/run_all.py` table. Every figure is a median measured in one run, next to a
baseline measured in the same run on the same machine, and their ratio (figure / baseline). A
benchmark is a script that prints its figures; no test asserts a timing.

Machine: {machine}. Settings: {settings}.

{table}

## Reading it

- **codec**: `firmware_protocol` encoding and stream-decoding TELEMETRY frames (42 bytes) against
  pymavlink's generated v2 codec on HEARTBEAT frames (21 bytes), both pure Python, 4 KiB chunks.
- **round trips**: the controller (`set_setpoints`, envelope check and calibration included; and
  `estop()`) over a pseudo-terminal to `smp sim --pty` in another process, against the raw pyserial
  echo of the same 17-byte frame over a pty through a peer process (the floor the OS gives).
- **telemetry ingest**: the reader's path per frame (decode, `Link` dispatch, the controller's
  listener building `PenTelemetry`) against the bare decoder on the same bytes; then 3 s of 1 kHz
  telemetry over the pty (received against sent) and the controller's CPU use against 100 Hz.
- **pass-log commit**: one pass recorded durably (`begin_pass` + `end_pass`: two chained
  transactions, WAL, `synchronous=FULL`) against one raw SQLite INSERT+COMMIT with the same
  settings in the same directory (the fsync floor of this disk).
- **start-up**: whole processes, from `exec` to exit, against `python -c pass`. `smp --help`
  imports no command module (each loads when used: `COMMANDS` in `smpdevice/cli/__init__.py`).

## Against the targets of the architecture issue (13)

- `smp --help` <= 3x `python -c pass`: met (lazy commands; it was about 10x).
- PING -> PONG <= 2x and setpoint round trip <= 2.5x the raw echo: not met. Every request goes
  through the one request engine: caller -> engine loop -> wire -> reader -> engine loop ->
  caller, four thread hand-offs of tens of microseconds each in CPython, against an echo floor
  of 30-50 us. The simulator's pty bridge now answers on the thread that read the command
  (select on the raw fd, no hand-off per frame).
- E-stop p99 <= 1 ms: the median is under 1 ms; the p99 moves between about 1.4 and 5 ms on this
  shared machine (the echo's own p99 reaches 0.5-0.8 ms here). The caller writes ESTOP at once
  and tells the engine loop only after the pen's answer, and the fault's frame history is
  formatted 20 ms later, so neither competes with the confirmation for the CPU.

## Calibration accuracy (21 CFR 878.4430 bench figures)

`bench/calibration_accuracy.py` runs the whole automatic calibration (`smp calibrate --auto`:
zero, depth fit, speed with the puncture count, verify) against 20 simulated pens (seeds 1..20,
each with its own hidden offset and gain, gauge noise and bow, speed ripple and wander) on the
virtual clock, with the default 1 s spins. Depth figures are over each pen's N = 6 check
readings taken through the new fit (not the fit points); puncture rate figures over the 3 set
speeds of every pen (52, 105 and 158 Hz). Measured 2026-11-29, CPython 3.11.7, 2 shared CPUs.

| figure (20 pens) | median | p95 | max | acceptance bound |
|---|---:|---:|---:|---:|
| depth accuracy: mean error, absolute | 0.0002 mm | 0.0005 mm | 0.0009 mm | 0.010 mm |
| depth accuracy: standard deviation | 0.0005 mm | 0.0008 mm | 0.0008 mm | 0.010 mm |
| depth accuracy: max error, absolute | 0.0008 mm | 0.0015 mm | 0.0017 mm | 0.020 mm |
| puncture rate accuracy: error, absolute (60 points) | 0.22 % | 0.50 % | 0.62 % | 3 % |
| the same, in Hz | 0.19 Hz | 0.59 Hz | 0.65 Hz | |
| gauge bowed by up to 0.02 mm: depth mean error | 0.0011 mm | 0.0019 mm | 0.0020 mm | 0.010 mm |
| gauge bowed: depth standard deviation | 0.0023 mm | 0.0031 mm | 0.0034 mm | 0.010 mm |
| gauge bowed: depth max error | 0.0035 mm | 0.0048 mm | 0.0052 mm | 0.020 mm |

All 40 runs passed. The puncture rate error is the simulated pen's own (its cam ripple and
speed wander), counted from the pen's stroke counter: a least-squares slope over the spin's
100 telemetry frames resolves it to better than half a puncture per second. A bowed gauge
leaves the puncture rate alone and shows in the depth spread, as it should. Reproduce:
`.venv/bin/python bench/calibration_accuracy.py [--seeds 20] [--bow-mm 0.02]` (about 35 s).

## The test suite (`make test`, issue 13)

`make test` runs pytest in two passes: every test not marked `realtime` on both cores
(`-n 2`, pytest-xdist), then the `realtime` ones alone (real ptys, real processes with
deadlines, and the browser console, whose in-process pen holds a 300 ms lease on wall time).
The doc and help-example tests run `smp` in-process (`tests/smpdevice/shell.py`) instead of
starting about 100 Python processes. The help examples run in four groups that xdist spreads.
Set `SMP_TEST_CPU=FILE` to get each test's CPU seconds.

| pytest wall time, this shared 2-core machine | before: one serial pass | after: two passes |
|---|---|---|
| other sessions' tests running (load about 11) | over 900 s (stopped at 90 %) | 590 s (534 + 56) |
| the same plus two busy loops | - | 712 s (674 + 38) |
| load about 4.5 | 343 s quiet, about 470 s loaded (issue note) | 262 s (212 + 50) |

The 60 s target is not met. The tests use about 180 CPU seconds, so two cores need at least
90 s for them. The rest of the wall time goes to tests that wait on a real-time simulated pen:
`smp demo`, `smp run` and `smp calibrate --auto` at the pen's real speed, which is 20 s for the
help pages' full demo alone. Reaching 60 s needs those CLI and service tests on the virtual
clock, and fewer hypothesis examples where a test asks for 300-400 of them.

### Session 4: four workers, mypy beside pass 1 (helper SPEED)

`make test` now runs ruff, then mypy beside the first pytest pass, which runs four xdist
workers handing tests out one at a time (`--maxschedchunk 1`) with the longest files collected
first (`LONG_FIRST` in tests/conftest.py), then the `realtime` pass alone as before. The
measurements (this shared 2-core machine, other helpers' tests and soaks running):

| step | time | notes |
|---|---|---|
| `scripts/system-deps` | 0.0 s | both packages present: two `command -v` checks |
| ruff | 0.1-0.2 s | |
| mypy, fresh clone / warm | 13.8 s (7.9 CPU-s) / 0.6 s | now beside pass 1 |
| pass 1, `-n 2` (before) | 252 s at load 1.5-4; 104 CPU-s in the tests, 123 in all | 1,949 tests |
| pass 1, `-n 4` | 325 s at load 7-14 (other helpers' soaks) | not comparable: the load doubled |
| 359 wait-heavy tests (1) | `-n 4` 134 s, `-n 2` 159 s | same minutes, load 6-7 |
| realtime pass | 44.5 s (25 tests, 14.8 CPU-s) | `test_giving_up` 8.2 s, console 19 s |
| `make test`, final tree | 321 s: ruff 1, mypy 8, pass 1 273, realtime 46 | load 4-8, 2,113 tests |

(1) the help examples, docs, cli, service and records tests.

Pass 1 waits far more than it computes: about 1 CPU-s in 5 of wall at `-n 2`. Where its wall
time goes (`SMP_TEST_CPU`, which now writes CPU and wall seconds per test):
- the help examples and the README run `smp demo` (15.5 s), `smp run` of the session-1 example
  (11.3 s each), `smp calibrate --auto` (5 s each, six of them) and `smp demo --quick` (5 s) at
  the simulated pen's real speed: 80 s of wall for 8.7 CPU-s over 87 commands;
- `smp` processes kept where the process is the point (Ctrl-C, exit codes of the real entry
  point, other terminals, a read-only mount): about 0.5-1 CPU-s of imports each;
- hypothesis runs of 150-400 examples (test_loader, profiles_strict, envelope, exports,
  stream_splits): CPU-bound, and on loaded cores the longest tail;
- a per-test deadline: hypothesis' default 200 ms per example failed a test at 570 ms on
  loaded cores; the suite now loads a profile with `deadline=None` (no test asserts timing).

The read-only-media tests run their five `smp` commands in one Python process under the
read-only mount or user (7.5 -> 3.7 CPU-s). The 60 s target is not met: the tests' own CPU
(about 105-160 CPU-s, more under contention) needs 55-80 s of two cores before any waiting,
and the realtime pass alone is about 45 s. What would reach it: an in-process `pensim://` on
a virtual clock for the CLI and doc tests (the examples' passes, calibrations and demo run at
the pen's real speed), and a `lease_ms` setting for the CLI so a starved in-process pen does not
latch LEASE_EXPIRED in a test on loaded cores.

## Reproduce

```sh
make bench                                  # installs pymavlink (extra `bench`), runs the table
.venv/bin/python bench/run_all.py --write   # the same, and rewrites this page
.venv/bin/python bench/codec.py             # each benchmark alone, with more detail
.venv/bin/python bench/latency.py
.venv/bin/python bench/passlog.py
```

The machine is shared: figures move by tens of percent between runs; the ratios move less.
Robustness figures (the fault campaign) are in [reliability.md](reliability.md).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="write docs/performance.md")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args(argv)
    from smpdevice.logs import configure

    configure("error")
    q = args.quick
    settings = dict(frames=5_000 if q else 50_000, repeats=3 if q else 7, n=50 if q else 300,
                    commits=100 if q else 1000, starts=3 if q else 11)
    print("codec ...", flush=True)
    run_codec(settings["frames"], settings["repeats"])
    print("latency (pty, simulator process) ...", flush=True)
    run_latency(settings["n"])
    print("telemetry ingest ...", flush=True)
    run_ingest(settings["frames"], settings["repeats"])
    print("pass log ...", flush=True)
    run_passlog(settings["commits"])
    print("start-up ...", flush=True)
    run_startup(settings["starts"])
    table = markdown()
    print()
    print(table)
    if args.write:
        text = PERF_DOC.format(machine=machine(), table=table, settings=", ".join(
            f"{k} {v}" for k, v in settings.items()))
        (ROOT / "docs" / "performance.md").write_text(text)
        print("\nwrote docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
