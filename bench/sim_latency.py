"""The simulator's answer time alone: a bare client against three peers over pseudo-terminals.

    .venv/bin/python bench/sim_latency.py [--n 2000] [--runs 3]

No controller, no pyserial: the client writes one frame with os.write on the pty's fd and reads
with os.read until a StreamDecoder gives the frame with its SEQ back, the same code for every
peer, so the differences between the rows are the peers' own:
- the echo peer (a Python process that writes back what it reads: the floor);
- the C reflex peer (firmware_protocol/c/reflex_peer.c, an MCU-like pen; needs gcc);
- the simulator (`smp sim --pty`, its own process, as a user runs it).
Each answers PING (PONG) and SET_SETPOINTS (ACK). The three run at once and take turns
(--rounds), so a shared machine's load falls on all of them alike. Printed: median and p99 in
us, the ratio to the echo floor of the same run, the median of the rounds' ratios (each round's
median against the echo's of the same round: steadier on a loaded machine), and the peer
process' CPU time per command (every thread's schedstat, in ns; the simulator's includes its
tick thread and 100 Hz telemetry). A benchmark, never a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency import ECHO_PEER, build_reflex_peer

from firmware_protocol import StreamDecoder, encode
from firmware_protocol.messages import Ping, SetSetpoints

_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU seconds of process `pid` so far, all its threads: from each thread's schedstat (ns)
    where the kernel keeps it, else from /proc/PID/stat (10 ms ticks: a rough figure)."""
    try:
        total_ns = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total_ns += int(f.read().split()[0])
        return total_ns / 1e9
    except (OSError, ValueError, IndexError):  # a thread ended meanwhile, or no schedstat
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_S


def _start(argv: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def peers(exe: Path | None) -> dict[str, Callable[[], tuple[subprocess.Popen, str]]]:
    out = {
        "echo peer (floor)": lambda: _start([sys.executable, "-c", ECHO_PEER]),
        "C reflex peer": lambda: _start([str(exe)]),
        "simulator (smp sim --pty)": lambda: _start(
            [sys.executable, "-m", "smpdevice", "sim", "--pty", "--seed", "3"]),
    }
    if exe is None:
        del out["C reflex peer"]
    return out


def round_trips(fd: int, frames: list[bytes], n: int) -> list[float]:
    """n round trips, frame i % len(frames); each waits for a frame with that frame's SEQ."""
    decoder = StreamDecoder()
    samples = []
    read, write, clock = os.read, os.write, time.perf_counter
    for i in range(n):
        frame = frames[i % len(frames)]
        seq = frame[3]
        t0 = clock()
        write(fd, frame)
        while not any(f.seq == seq for f in decoder.feed(read(fd, 4096))):
            pass
        samples.append(clock() - t0)
    return samples


def command_frames() -> dict[str, list[bytes]]:
    """PINGs and valid setpoints, SEQ 1..250 in turn (never a duplicate within the window)."""
    seqs = range(1, 251)
    return {
        "PING -> PONG": [encode(Ping(s), s) for s in seqs],
        "SET_SETPOINTS -> ACK": [encode(SetSetpoints(400 + s, 10000, 400, 100000), s)
                                 for s in seqs],
    }


def measure(starts: dict[str, Callable[[], tuple[subprocess.Popen, str]]], n: int,
            rounds: int) -> dict[str, dict[str, dict]]:
    """All peers at once, their round trips interleaved in `rounds` turns, so that each
    peer's figures come from the same minutes of a shared machine as the floor's."""
    procs: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for name, start in starts.items():
            proc, path = start()
            fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(fd)
            procs[name] = (proc, fd)
        out: dict[str, dict[str, dict]] = {name: {} for name in procs}
        for cmd, frames in command_frames().items():
            for name, (_, fd) in procs.items():
                round_trips(fd, frames, 200)  # warm up (and let the simulator boot)
                out[name][cmd] = {"samples": [], "cpu_s": 0.0, "round_medians": []}
            for _ in range(rounds):
                for name, (proc, fd) in procs.items():
                    cpu0 = _cpu_s(proc.pid)
                    samples = round_trips(fd, frames, n // rounds)
                    out[name][cmd]["cpu_s"] += _cpu_s(proc.pid) - cpu0
                    out[name][cmd]["samples"] += samples
                    out[name][cmd]["round_medians"].append(statistics.median(samples))
            for name in procs:
                out[name][cmd]["cpu_s"] /= len(out[name][cmd]["samples"])
        return out
    finally:
        for proc, fd in procs.values():
            os.close(fd)
            proc.terminate()
            proc.wait(timeout=5)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="round trips per figure")
    parser.add_argument("--runs", type=int, default=1, help="whole runs, each with its floor")
    parser.add_argument("--rounds", type=int, default=10,
                        help="turns per figure: the peers alternate, so they share the load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_reflex_peer(Path(tmp))
        for run in range(max(1, args.runs)):
            load = os.getloadavg()[0]
            results = measure(peers(exe), args.n, args.rounds)
            floor = {cmd: statistics.median(r["samples"])
                     for cmd, r in results["echo peer (floor)"].items()}
            print(f"run {run + 1}, load average {load:.2f}")
            print(f"{'peer':<28}{'command':<22}{'median us':>10}{'p99 us':>9}{'x echo':>8}"
                  f"{'x echo/round':>13}{'peer CPU us/cmd':>17}")
            echo = results["echo peer (floor)"]
            for name, per_cmd in results.items():
                for cmd, r in per_cmd.items():
                    med = statistics.median(r["samples"])
                    # each round's median against the echo's in the same round (the same
                    # minutes of a shared machine), then the median of those ratios
                    by_round = statistics.median(
                        peer / floor_round for peer, floor_round
                        in zip(r["round_medians"], echo[cmd]["round_medians"], strict=True))
                    print(f"{name:<28}{cmd:<22}{med * 1e6:>10.1f}{_p99(r['samples']) * 1e6:>9.1f}"
                          f"{med / floor[cmd]:>8.2f}{by_round:>13.2f}{r['cpu_s'] * 1e6:>17.1f}")
            print()
    if exe is None:
        print("(C reflex peer skipped: gcc is not installed)")


if __name__ == "__main__":
    main()
