"""Controller latency and telemetry ingest, over pseudo-terminals, against two floors.

    .venv/bin/python bench/latency.py [--n 300] [--runs 3]

Prints, in one run:
- the raw pyserial echo round trip over a pty (the first floor: a peer process that writes
  back what it reads);
- against two pens, each in its own process: the simulator (`smp sim --pty`) and the C reflex
  peer (firmware_protocol/c/reflex_peer.c on the generated C codec, built here with gcc: the
  second floor, a pen that answers every command at once as an MCU would):
  - a bare Python client on the pty's descriptor (encode, write, select, read, decode; no
    controller, no threads): PING and the setpoint frame, the floor of any Python host;
  - the link alone (PING -> PONG, no controller);
  - the controller's setpoint-to-ACK round trip (`set_setpoints`, envelope check and
    calibration included);
  - E-stop-to-confirmation (`estop()` returning: ESTOP sent, ACK received, state estop),
    each right after the previous clear_faults, and during a pass (the needle running for
    5-15 ms first: both processes' threads asleep between telemetry frames, as in use);
  each as median and p99 and as a ratio to the echo floor;
then the telemetry rates the controller ingests from the simulator with zero loss and its CPU
use at 1 kHz (the simulator's CPU is its own process'). Without gcc the peer column is skipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import serial

from firmware_protocol import encode
from firmware_protocol.messages import Ping, SetSetpoints, SetTelemetryRate

FRAME = encode(SetSetpoints(800, 10000, 400, 100000), 1)  # what a setpoint costs on the wire


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


ECHO_PEER = """
import os, sys, tty
master, slave = os.openpty()
tty.setraw(master); tty.setraw(slave)
print(os.ttyname(slave), flush=True)
while True:
    os.write(master, os.read(master, 4096))
"""


def echo_floor(n: int) -> list[float]:
    """Round trips to a peer process that writes back what it reads, over its pty."""
    peer = subprocess.Popen([sys.executable, "-c", ECHO_PEER], stdout=subprocess.PIPE, text=True)
    try:
        port = serial.Serial(peer.stdout.readline().strip(), timeout=1)
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            port.write(FRAME)
            got = b""
            while len(got) < len(FRAME):
                got += port.read(len(FRAME) - len(got))
            samples.append(time.perf_counter() - t0)
        port.close()
    finally:
        peer.kill()
        peer.wait()
    return samples


def bare_figures(path: str, n: int) -> dict[str, list[float]]:
    """The floor of a Python host on this pen: a bare client on the pty's descriptor (encode,
    os.write, select, os.read, StreamDecoder; no controller, no threads), PING and the
    setpoint frame. What the controller adds is the difference to it."""
    import select

    from firmware_protocol import StreamDecoder

    port = serial.Serial(path, timeout=1)
    fd, decoder = port.fileno(), StreamDecoder()
    out: dict[str, list[float]] = {"bare_ping": [], "bare_sp": []}
    try:
        for key, message in (("bare_ping", Ping(1)), ("bare_sp", SetSetpoints(800, 10000, 400,
                                                                              100000))):
            for i in range(n + 20):  # the first 20 warm up
                seq = i % 250 + 1
                t0 = time.perf_counter()
                os.write(fd, encode(message, seq))
                while True:
                    if not select.select([fd], [], [], 1.0)[0]:
                        raise RuntimeError(f"no reply from the pen on {path}")
                    if any(f.seq == seq for f in decoder.feed(os.read(fd, 4096))):
                        break
                if i >= 20:
                    out[key].append(time.perf_counter() - t0)
    finally:
        port.close()
    return out


def start_sim() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smpdevice", "sim", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    path = proc.stdout.readline().strip()
    return proc, path


PEER_SOURCE = Path(__file__).resolve().parent.parent / "firmware_protocol" / "c" / "reflex_peer.c"
PEER_SERIAL = "REFLEX-0001"


def build_reflex_peer(workdir: Path) -> Path | None:
    """Generate the C codec and build the reflex peer with it; None without gcc."""
    from firmware_protocol.c_codec import SOURCE_NAME, generate_c_codec

    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    for name, text in generate_c_codec().items():
        (workdir / name).write_text(text, encoding="utf-8")
    exe = workdir / "reflex_peer"
    subprocess.run([gcc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-I", str(workdir), str(workdir / SOURCE_NAME), str(PEER_SOURCE),
                    "-o", str(exe)], check=True)
    return exe


def start_peer(exe: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def sim_figures(n: int, ingest: bool = True) -> dict[str, list[float] | dict]:
    from simulators.pen_model import PenModel
    from smpdevice.control.calibration import Calibration

    model = PenModel(seed=3)
    cal = Calibration.linear(pen_serial=model.serial, technician="bench",
                             offset_mm=-model.offset_mm, gain=model.gain)
    proc, path = start_sim()
    try:
        bare = bare_figures(path, n)
        return {**controller_figures(path, cal, n, ingest=ingest), **bare}
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def peer_figures(exe: Path, n: int) -> dict[str, list[float] | dict]:
    from smpdevice.control.calibration import Calibration

    cal = Calibration.linear(pen_serial=PEER_SERIAL, technician="bench", offset_mm=0.0,
                             gain=1.0)
    proc, path = start_peer(exe)
    try:
        bare = bare_figures(path, n)
        return {**controller_figures(path, cal, n, ingest=False), **bare}
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def controller_figures(path: str, cal, n: int, ingest: bool) -> dict[str, list[float] | dict]:
    """PING, setpoint and E-stop round trips through the controller on the pen at `path`."""
    from smpdevice.control.controller import PenController
    from smpdevice.link.items import Operation

    with PenController.connect(path, calibration=cal) as pen:
        def request(message):  # through the request engine, the only way to the pen
            return pen._engine.call(Operation, [message])

        pen.set_zone("crown")
        raw = []
        for _ in range(n):
            t0 = time.perf_counter()
            request(Ping(1))
            raw.append(time.perf_counter() - t0)
        setpoint = []
        for i in range(n):
            t0 = time.perf_counter()
            pen.set_setpoints(depth_mm=0.4 + (i % 20) / 100, speed_hz=100, duty_pct=40,
                              period_ms=100)
            setpoint.append(time.perf_counter() - t0)
        estop = []
        for i in range(n + 20):  # n samples (a p99 of 60 was their maximum); 20 warm up
            t0 = time.perf_counter()
            pen.estop()
            if i >= 20:
                estop.append(time.perf_counter() - t0)
            pen.clear_faults()
        estop_run = estop_during_pass(pen, max(50, n // 3))
        rates = {}
        for rate in (100, 250, 500, 1000) if ingest else ():
            request(SetTelemetryRate(rate))
            time.sleep(0.2)
            lost0, got0 = pen.link.stats.telemetry_lost, pen.link.stats.telemetry_received
            cpu0, wall0 = time.process_time(), time.perf_counter()
            time.sleep(3.0)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            rates[rate] = {
                "received": pen.link.stats.telemetry_received - got0,
                "lost": pen.link.stats.telemetry_lost - lost0,
                "cpu_pct": 100 * cpu / wall,
            }
        request(SetTelemetryRate(100))
    return {"raw": raw, "setpoint": setpoint, "estop": estop, "estop_run": estop_run,
            "ingest": rates}


def estop_during_pass(pen, n: int) -> list[float]:
    """E-stops as they come in use: the needle running for 5-15 ms (telemetry and lease
    renewals flowing, every thread of both processes asleep between them), not right after
    the previous clear_faults."""
    import random

    from smpdevice.control.states import State
    from smpdevice.errors import SmpError

    rng, out = random.Random(13), []
    for _ in range(3 * n):  # a loaded machine may starve a pass before its E-stop: retried
        if len(out) == n:
            break
        try:
            pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=100)
            pen.arm()
            pen.start_needle()
        except SmpError:  # e.g. the lease lapsed between arm and start: the pen faulted
            if pen.state in (State.FAULT, State.ESTOP):
                pen.clear_faults()
            elif pen.state is State.ARMED:
                pen.disarm()
            continue
        time.sleep(rng.uniform(0.005, 0.015))
        t0 = time.perf_counter()
        pen.estop()
        out.append(time.perf_counter() - t0)
        pen.clear_faults()
    return out


def _cells(samples: list[float] | None, floor_median: float) -> str:
    if not samples:
        return f"{'-':>10}{'-':>10}{'-':>9}"
    med = statistics.median(samples)
    return f"{med * 1e3:>10.3f}{pct(samples, 0.99) * 1e3:>10.3f}{med / floor_median:>9.2f}"


def one_run(n: int, exe: Path | None, ingest: bool) -> dict:
    """The echo floor and both pens, measured back to back (the ratios of one run)."""
    floor = echo_floor(n)
    sim = sim_figures(n, ingest=ingest)
    peer = peer_figures(exe, n) if exe is not None else None
    return {"floor": floor, "sim": sim, "peer": peer, "load": os.getloadavg()[0]}


def _ratio(run: dict, pen: str, key: str, over: str | None = None) -> float | None:
    """`key`'s median over the echo floor of the run, or over `over`'s (the same pen's)."""
    figures = run[pen]
    if not figures or not figures[key] or (over is not None and not figures[over]):
        return None
    base = run["floor"] if over is None else figures[over]
    return statistics.median(figures[key]) / statistics.median(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="round trips per figure")
    parser.add_argument("--runs", type=int, default=1,
                        help="whole runs (each with its own echo floor); ratios are medians")
    args = parser.parse_args()
    n, runs_n = args.n, max(1, args.runs)
    from smpdevice.logs import configure

    configure("error")  # the E-stop figures latch the pen on purpose: no fault warning per stop
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_reflex_peer(Path(tmp))
        runs = [one_run(n, exe, ingest=(i == 0)) for i in range(runs_n)]
    first = runs[0]
    floor, sim, peer = first["floor"], first["sim"], first["peer"]
    floor_median = statistics.median(floor)
    print(f"{'':<30}{' simulator ':-^29}{' C reflex peer ':-^29}")
    print(f"{'figure':<30}" + f"{'median ms':>10}{'p99 ms':>10}{'x floor':>9}" * 2)
    print(f"{'raw pyserial echo (floor)':<30}{_cells(floor, floor_median)}")
    rows = (("bare client PING -> PONG", "bare_ping"), ("bare client setpoint -> ACK", "bare_sp"),
            ("link PING -> PONG", "raw"), ("controller setpoint -> ACK", "setpoint"),
            ("E-stop -> confirmation", "estop"), ("E-stop during a pass", "estop_run"))
    for name, key in rows:
        print(f"{name:<30}{_cells(sim[key], floor_median)}"
              f"{_cells(peer[key] if peer else None, floor_median)}")
    if peer is None:
        print("(C reflex peer skipped: gcc is not installed)")
    if runs_n > 1:
        print()
        loads = ", ".join(f"{r['load']:.1f}" for r in runs)
        print(f"{runs_n} runs, ratio to the echo floor of the same run (load average: {loads}):")
        print(f"{'echo floor, us':<36}" + "".join(
            f"{statistics.median(r['floor']) * 1e6:>9.1f}" for r in runs))
        print(f"{'x echo floor':<36}" + "".join(f"{'run ' + str(i + 1):>9}"
                                                for i in range(runs_n)) + f"{'median':>9}")
        for pen, label in (("sim", "simulator"), ("peer", "reflex peer")):
            for name, k in rows:
                ratios = [_ratio(r, pen, k) for r in runs]
                known = [x for x in ratios if x is not None]
                print(f"{label + ': ' + name:<36}" + "".join(f"{_fmt(x):>9}" for x in ratios)
                      + f"{_fmt(statistics.median(known) if known else None):>9}")
        # the echo floor moves 2x between runs of one minute here (21-25 or 42-80 us) while the
        # bare client holds: what the host adds, against the bare client of the same run
        for pen, label in (("sim", "simulator"), ("peer", "reflex peer")):
            for name, k, bare in (("link PING", "raw", "bare_ping"),
                                  ("controller setpoint", "setpoint", "bare_sp")):
                ratios = [_ratio(r, pen, k, bare) for r in runs]
                known = [x for x in ratios if x is not None]
                print(f"{label + ': ' + name + ' x bare client':<36}"
                      + "".join(f"{_fmt(x):>9}" for x in ratios)
                      + f"{_fmt(statistics.median(known) if known else None):>9}")
        for pen, label in (("sim", "simulator"), ("peer", "reflex peer")):
            for key, what in (("estop", "E-stop"), ("estop_run", "E-stop during a pass")):
                p99 = [pct(r[pen][key], 0.99) * 1e3 for r in runs if r[pen] and r[pen][key]]
                print(f"{what} p99 ({label}), ms per run: {', '.join(f'{x:.3f}' for x in p99)}")
    print()
    print(f"{'telemetry Hz':<14}{'received':>10}{'lost':>6}{'controller CPU %':>18}  (simulator)")
    for rate, r in sim["ingest"].items():
        print(f"{rate:<14}{r['received']:>10}{r['lost']:>6}{r['cpu_pct']:>18.1f}")


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


if __name__ == "__main__":
    main()
