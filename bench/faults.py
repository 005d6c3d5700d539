"""Fault campaign: the system under load, link and device faults, bad input, crashes and full disks.

    .venv/bin/python bench/faults.py                  # every scenario, full counts (~15 min)
    .venv/bin/python bench/faults.py commands fuzz    # some scenarios
    .venv/bin/python bench/faults.py --quick          # small counts (a smoke run)

Scenarios (each also a function `scenario_<name>(...)` that tests call with smaller counts):

- commands    10,000 distinct SET_SETPOINTS over a link with 1 % flipped bits and 1 % dropped
              bytes (both ways): each completes exactly once on the pen or fails with a clear
              error; none executed twice; every call bounded.
- fuzz        1,000,000 random and mutated byte strings into `StreamDecoder` and into the
              simulator firmware's receive path (`PenFirmware.receive_now`): no exception, no
              corrupted frame accepted (a decoded frame that is not one of the frames the input
              was built from, byte for byte).
- kills       100 treatment sessions, each controller process SIGKILLed at a random moment: the
              needle stops within the lease; on restart (pass-log recovery) every committed pass is
              present and the interrupted one is recorded as controller_crashed.
- disconnects 100 cable pulls while the needle runs (in-process port errors and a PTY that goes
              silent, alternately): link loss reported within two lease periods, the needle never
              resumes by itself, reconnect on request works.
- disk        the pass log fails (disk full, read-only) before and during a pass: needle stopped,
              a clear error, nothing committed lost.
- soak        an eight-hour clinic day (three sessions) on the virtual clock, a host driving the
              simulator directly, every pass in a real pass log; memory at start, middle and end.

Prints one line per scenario and a results table; exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import multiprocessing
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from firmware_protocol import StreamDecoder, encode, units  # noqa: E402
from firmware_protocol import messages as m  # noqa: E402
from firmware_protocol.codes import Fault, FirmwareState, MsgType  # noqa: E402
from firmware_protocol.messages import REGISTRY  # noqa: E402


@dataclass
class Result:
    """One scenario's outcome: figures in print order, and every failure found."""

    name: str
    count: int
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, text: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(text)

    def summary(self) -> str:
        return "; ".join(f"{k} {_fmt(v)}" for k, v in self.figures.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _wait(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def _calibration(sim):
    from smpdevice.calibration import Calibration

    return Calibration.linear(pen_serial=sim.serial, technician="campaign",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain)


# ============================================================================ 1. commands


def _setpoint(i: int) -> dict[str, float]:
    """The i-th command: distinct for i < 14,000 (speed in 0.01 Hz steps, then duty)."""
    return dict(depth_mm=0.30 + (i % 41) / 100, speed_hz=60.0 + (i % 7000) / 100,
                duty_pct=30.0 + i // 7000, period_ms=100.0)


def scenario_commands(n: int = 10_000, seed: int = 11, lease_ms: int = 1000) -> Result:
    """n distinct setpoints over LinkFaultConfig(flip_p=0.01, drop_p=0.01)."""
    from simulators import LinkFaultConfig, PenSimulator
    from smpdevice.controller import PenController, State
    from smpdevice.errors import SmpError
    from smpdevice.link import LinkError

    res = Result("commands", n)
    t0 = time.perf_counter()
    faults = LinkFaultConfig(flip_p=0.01, drop_p=0.01)
    executed: Counter[bytes] = Counter()  # SET_SETPOINTS payloads the pen executed (ACKed)
    foreign: list[tuple[int, bytes]] = []  # executed payloads the host never sent
    durations: list[float] = []
    completed = failed_clear = failed_other = reconnects = 0
    with PenSimulator(seed=seed, link_faults=faults) as sim:
        fw = sim.firmware
        current_seq = [0]
        original_dispatch, original_execute = fw._dispatch, fw._execute

        def dispatch(frame):
            current_seq[0] = frame.seq
            return original_dispatch(frame)

        def execute(mtype, msg):
            reply = original_execute(mtype, msg)
            if mtype is MsgType.SET_SETPOINTS and reply.TYPE == MsgType.ACK:
                executed[msg.pack()] += 1
            return reply

        fw._dispatch, fw._execute = dispatch, execute
        cal = _calibration(sim)
        pen = PenController.connect(sim.url, calibration=cal, lease_ms=lease_ms)
        bound_s = pen.link.max_command_time_s() + 1.0
        try:
            pen.set_zone("crown")
            sent: dict[bytes, int] = {}
            outcome: list[str] = []
            for i in range(n):
                sp = _setpoint(i)
                payload = m.SetSetpoints(
                    depth_um=units.mm_to_um(cal.to_actuator_mm(sp["depth_mm"])),
                    speed_centihz=units.hz_to_centihz(sp["speed_hz"]),
                    duty_permille=units.pct_to_permille(sp["duty_pct"]),
                    period_us=units.ms_to_us(sp["period_ms"])).pack()
                if payload in sent:
                    raise AssertionError(f"commands {sent[payload]} and {i} are not distinct")
                sent[payload] = i
                if pen.state is State.DISCONNECTED:  # the lossy link lost the pen: reconnect
                    reconnects += 1
                    pen.reconnect()
                    pen.set_zone("crown")
                t = time.perf_counter()
                try:
                    pen.set_setpoints(**sp)
                    completed += 1
                    outcome.append("ok")
                except LinkError as exc:
                    text = str(exc)
                    if "no reply" in text or "link" in text:
                        failed_clear += 1
                        outcome.append("failed")
                    else:
                        failed_other += 1
                        outcome.append("other")
                        res.fail(f"command {i}: unclear error {text!r}")
                except SmpError as exc:
                    failed_other += 1
                    outcome.append("other")
                    res.fail(f"command {i}: {type(exc).__name__}: {exc}")
                dt = time.perf_counter() - t
                durations.append(dt)
                if dt > bound_s:
                    res.fail(f"command {i} took {dt:.2f} s (bound {bound_s:.2f} s)")
            stats = pen.link.stats
            retransmissions, duplicates = stats.retransmissions, fw.duplicates
        finally:
            pen.close()
    twice = sum(1 for c in executed.values() if c > 1)
    for payload, count in executed.items():
        if payload not in sent:
            foreign.append((count, payload))
    lost_ack = 0
    for payload, i in sent.items():
        count = executed.get(payload, 0)
        if outcome[i] == "ok" and count != 1:
            res.fail(f"command {i} completed but the pen executed it {count} times")
        if outcome[i] != "ok" and count == 1:
            lost_ack += 1  # executed, but every ACK was lost: the error says so ("no reply")
    if twice:
        res.fail(f"{twice} commands executed twice")
    if foreign:
        res.fail(f"{len(foreign)} corrupted SET_SETPOINTS executed: {foreign[:3]}")
    res.figures = {
        "completed": completed, "failed with clear error": failed_clear,
        "of which executed, ACK lost": lost_ack, "other errors": failed_other,
        "executed twice": twice, "corrupted executed": len(foreign),
        "retransmissions": retransmissions, "duplicates answered from cache": duplicates,
        "reconnects": reconnects, "median call ms": _median(durations) * 1e3,
        "max call ms": max(durations) * 1e3, "bound ms": bound_s * 1e3,
    }
    res.seconds = time.perf_counter() - t0
    return res


# ============================================================================ 2. fuzz

MUTATIONS = ("bitflip_1_3", "burst_le16", "substitute_2_4", "insert", "delete", "truncate",
             "duplicate", "splice", "junk_around", "random", "random_header")
# CRC-16/CCITT detects every error of up to 3 bits and every burst of up to 16 bits; a frame
# cut short never completes. Other damage passes the CRC with probability about 2**-16.
GUARANTEED = {"bitflip_1_3", "burst_le16", "truncate", "duplicate", "junk_around"}


def _random_frame(rng: random.Random, types: list) -> bytes:
    cls = rng.choice(types)
    return encode(cls.unpack_from(rng.randbytes(cls.SIZE), 0), rng.getrandbits(8))


def _mutate(kind: str, rng: random.Random, types: list) -> tuple[bytes, list[bytes]]:
    """(input bytes, the valid frames it was built from)."""
    f = _random_frame(rng, types)
    b = bytearray(f)
    if kind == "bitflip_1_3":
        for bit in rng.sample(range(len(b) * 8), rng.randint(1, 3)):
            b[bit // 8] ^= 1 << (bit % 8)
        return bytes(b), [f]
    if kind == "burst_le16":
        length = rng.randint(2, 16)
        start = rng.randrange(0, len(b) * 8 - length + 1)
        for bit in range(start, start + length):
            if bit in (start, start + length - 1) or rng.random() < 0.5:
                b[bit // 8] ^= 0x80 >> (bit % 8)
        return bytes(b), [f]
    if kind == "substitute_2_4":
        for i in rng.sample(range(2, len(b)), min(len(b) - 2, rng.randint(2, 4))):
            b[i] = rng.getrandbits(8)
        return bytes(b), [f]
    if kind == "insert":
        for _ in range(rng.randint(1, 3)):
            b.insert(rng.randrange(2, len(b)), rng.getrandbits(8))
        return bytes(b), [f]
    if kind == "delete":
        del b[rng.randrange(2, len(b))]
        g = _random_frame(rng, types)  # the next frame fills the gap, as on a live link
        return bytes(b) + g, [f, g]
    if kind == "truncate":
        return bytes(b[: rng.randrange(len(b))]), [f]
    if kind == "duplicate":
        return f + f, [f]
    if kind == "splice":
        g = _random_frame(rng, types)
        return f[: rng.randrange(3, len(f))] + g[rng.randrange(3, len(g)):], [f, g]
    if kind == "junk_around":
        return rng.randbytes(rng.randint(0, 24)) + f + rng.randbytes(rng.randint(0, 24)), [f]
    if kind == "random":
        return rng.randbytes(rng.randint(1, 96)), []
    # random_header: a plausible header (sync, right LEN, known TYPE), random payload and CRC
    cls = rng.choice(types)
    head = b"\xaa\x55" + bytes((cls.SIZE, rng.getrandbits(8), cls.TYPE))
    return head + rng.randbytes(cls.SIZE + 2), []


def _fuzz_chunk(args: tuple[int, int, int]) -> dict[str, Any]:
    """Worker: `count` inputs from `seed`; each into a fresh decoder, a long-lived decoder, and
    a firmware's receive path."""
    from simulators import VirtualClock
    from simulators.firmware import PenFirmware
    from simulators.pen_model import PenModel

    seed, count, _ = args
    rng = random.Random(seed)
    host_types = [c for c in REGISTRY.values()]
    inputs = Counter()
    bad = Counter()  # corrupted frames accepted by the fresh decoder, per mutation
    fw_bad = Counter()  # ... executed by the firmware
    random_valid = 0  # random inputs that happened to form a valid frame (not corruption)
    exceptions: list[str] = []
    examples: list[str] = []
    stream = StreamDecoder()  # every input, back to back
    stream_frames = 0
    fw = PenFirmware(PenModel(seed=seed % 1000), VirtualClock())
    fw_current: list[bytes] = []
    fw_executed = [0]
    original_execute = fw._execute

    def execute(mtype, msg):
        fw_executed[0] += 1
        frame = encode(msg, fw_seq[0])
        if frame not in fw_current:
            fw_bad[fw_kind[0]] += 1
            if len(examples) < 5:
                examples.append(f"firmware {fw_kind[0]}: {frame.hex()}")
        return original_execute(mtype, msg)

    fw_seq, fw_kind = [0], [""]
    original_dispatch = fw._dispatch

    def dispatch(frame):
        fw_seq[0] = frame.seq
        return original_dispatch(frame)

    fw._execute, fw._dispatch = execute, dispatch
    for n in range(count):
        kind = MUTATIONS[n % len(MUTATIONS)]
        inputs[kind] += 1
        data, originals = _mutate(kind, rng, host_types)
        try:
            for frame in StreamDecoder().feed(data):
                if encode(frame.message, frame.seq) not in originals:
                    if originals:
                        bad[kind] += 1
                        if len(examples) < 5:
                            examples.append(f"decoder {kind}: {data.hex()} -> {frame}")
                    else:
                        random_valid += 1
            stream_frames += len(stream.feed(data))
            fw_current[:] = originals
            fw_kind[0] = kind
            if not originals:
                fw_current[:] = [None]  # anything a random input makes the firmware run: count it
            fw.decoder.reset()  # one input at a time, so a frame is attributed to its input
            fw.receive_now(data)
            if n % 256 == 0:
                fw.step()
                fw.take_frames()
        except Exception as exc:  # the campaign counts exceptions; it must not stop on one
            exceptions.append(f"{kind}: {type(exc).__name__}: {exc} on {data.hex()}")
    # random inputs that the firmware executed are counted in fw_bad under "random*" kinds
    return {"inputs": inputs, "bad": bad, "fw_bad": fw_bad, "random_valid": random_valid,
            "exceptions": exceptions[:20], "n_exceptions": len(exceptions),
            "examples": examples, "stream_frames": stream_frames,
            "fw_executed": fw_executed[0], "garbage": stream.stats.garbage_bytes}


def scenario_fuzz(n: int = 1_000_000, seed: int = 5, workers: int = 2) -> Result:
    """n inputs (random and mutated frames) into StreamDecoder and PenFirmware.receive_now."""
    res = Result("fuzz", n)
    t0 = time.perf_counter()
    chunk = 25_000
    jobs = [(seed * 1_000_003 + k, min(chunk, n - start), k)
            for k, start in enumerate(range(0, n, chunk))]
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers) as pool:
            parts = pool.map(_fuzz_chunk, jobs)
    else:
        parts = [_fuzz_chunk(job) for job in jobs]
    inputs, bad, fw_bad = Counter(), Counter(), Counter()
    n_exc = random_valid = fw_executed = 0
    examples: list[str] = []
    for part in parts:
        inputs.update(part["inputs"])
        bad.update(part["bad"])
        fw_bad.update(part["fw_bad"])
        n_exc += part["n_exceptions"]
        random_valid += part["random_valid"]
        fw_executed += part["fw_executed"]
        examples += part["examples"] + part["exceptions"]
    fw_random = fw_bad.pop("random", 0) + fw_bad.pop("random_header", 0)
    if n_exc:
        res.fail(f"{n_exc} exceptions: {examples[:3]}")
    for kind in MUTATIONS:
        if bad[kind] or fw_bad[kind]:
            rule = "guaranteed by CRC-16" if kind in GUARANTEED else "CRC-16 residual ~2^-16"
            res.fail(f"{kind}: {bad[kind]} corrupted frames accepted by the decoder, "
                     f"{fw_bad[kind]} executed by the firmware, of {inputs[kind]:,} ({rule})")
    res.figures = {
        "inputs": sum(inputs.values()), "exceptions": n_exc,
        "corrupted accepted (decoder)": sum(bad.values()),
        "corrupted executed (firmware)": sum(fw_bad.values()),
        "of those in CRC-guaranteed classes": sum(bad[k] + fw_bad[k] for k in GUARANTEED),
        "random inputs forming a valid frame": random_valid + fw_random,
        "commands run by the firmware": fw_executed,
    }
    res.figures["per class (decoder/firmware of inputs)"] = ", ".join(
        f"{k} {bad[k]}/{fw_bad[k]} of {inputs[k]:,}" for k in MUTATIONS)
    res.details = examples[:10]  # type: ignore[attr-defined]
    res.seconds = time.perf_counter() - t0
    return res
