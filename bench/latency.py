"""Controller latency and telemetry ingest, over pseudo-terminals, against a raw echo floor.

    .venv/bin/python bench/latency.py [--n 300]

Prints, in one run:
- the raw pyserial echo round trip over a pty (the floor: a peer process that writes back what
  it reads), and the link alone (PING -> PONG through the simulator, no controller);
- the controller's setpoint-to-ACK round trip (`set_setpoints`, envelope check and calibration
  included) against `smp sim --pty` in another process;
- E-stop-to-confirmation (`estop()` returning: ESTOP sent, ACK received, state estop);
each as median and p99 and as a ratio to the floor; then the telemetry rates the controller
ingests with zero loss and its CPU use at 1 kHz (the simulator's CPU is its own process').
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

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


def start_sim() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "smpdevice", "sim", "--pty", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    path = proc.stdout.readline().strip()
    return proc, path


def controller_figures(n: int) -> dict[str, list[float] | dict]:
    from simulators.pen_model import PenModel
    from smpdevice.calibration import Calibration
    from smpdevice.controller import PenController

    model = PenModel(seed=3)
    proc, path = start_sim()
    try:
        cal = Calibration.linear(pen_serial=model.serial, technician="bench",
                                 offset_mm=-model.offset_mm, gain=model.gain)
        with PenController.connect(path, calibration=cal) as pen:
            pen.set_zone("crown")
            raw = []
            for _ in range(n):
                t0 = time.perf_counter()
                pen.link.request(Ping(1))
                raw.append(time.perf_counter() - t0)
            setpoint = []
            for i in range(n):
                t0 = time.perf_counter()
                pen.set_setpoints(depth_mm=0.4 + (i % 20) / 100, speed_hz=100, duty_pct=40,
                                  period_ms=100)
                setpoint.append(time.perf_counter() - t0)
            estop = []
            for _ in range(max(50, n // 5)):
                t0 = time.perf_counter()
                pen.estop()
                estop.append(time.perf_counter() - t0)
                pen.clear_faults()
            ingest = {}
            for rate in (100, 250, 500, 1000):
                pen.link.request(SetTelemetryRate(rate))
                time.sleep(0.2)
                lost0, got0 = pen.link.stats.telemetry_lost, pen.link.stats.telemetry_received
                cpu0, wall0 = time.process_time(), time.perf_counter()
                time.sleep(3.0)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                ingest[rate] = {
                    "received": pen.link.stats.telemetry_received - got0,
                    "lost": pen.link.stats.telemetry_lost - lost0,
                    "cpu_pct": 100 * cpu / wall,
                }
            pen.link.request(SetTelemetryRate(100))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
    return {"raw": raw, "setpoint": setpoint, "estop": estop, "ingest": ingest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="round trips per figure")
    n = parser.parse_args().n
    from smpdevice.logs import configure

    configure("warning")
    floor = echo_floor(n)
    figures = controller_figures(n)
    floor_median = statistics.median(floor)
    print(f"{'figure':<34}{'median ms':>10}{'p99 ms':>10}{'x floor':>9}")
    rows = [("raw pyserial echo over pty (floor)", floor),
            ("link PING -> PONG (no controller)", figures["raw"]),
            ("controller setpoint -> ACK", figures["setpoint"]),
            ("E-stop -> confirmation", figures["estop"])]
    for name, samples in rows:
        med = statistics.median(samples)
        print(f"{name:<34}{med * 1e3:>10.3f}{pct(samples, 0.99) * 1e3:>10.3f}"
              f"{med / floor_median:>9.2f}")
    print()
    print(f"{'telemetry Hz':<14}{'received':>10}{'lost':>6}{'controller CPU %':>18}")
    for rate, r in figures["ingest"].items():
        print(f"{rate:<14}{r['received']:>10}{r['lost']:>6}{r['cpu_pct']:>18.1f}")


if __name__ == "__main__":
    main()
