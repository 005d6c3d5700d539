"""Fault campaign, soak (bench/faults.py soak): an eight-hour clinic day on the virtual clock."""

from __future__ import annotations

import gc
import os
import resource
import tempfile
import time
import tracemalloc
from typing import Any

from bench.campaign_core import SCREENING_CLEAR, Result
from firmware_protocol import StreamDecoder, encode
from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, MsgType

# ============================================================================ 6. soak


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def scenario_soak(hours: float = 8.0, sessions: int = 3, seed: int = 71, pass_s: float = 90.0,
                  rest_s: float = 30.0, break_s: float = 900.0, step_s: float = 0.1,
                  lease_ms: int = 1000, telemetry_hz: int = 100,
                  trace: bool = False) -> Result:
    """A clinic day on the virtual clock: `sessions` sessions of passes (pass_s on, rest_s off)
    with breaks between sessions, a host driving the simulator directly, every pass in a real
    pass log. Memory at start, middle and end must be flat: RSS and live objects (gc), and with
    `trace` tracemalloc's traced bytes (about 3x slower)."""
    from simulators import PenSimulator, VirtualClock
    from smpdevice.passlog import PassLog, PassOutcome, PassStats

    res = Result("soak", sessions)
    t0 = time.perf_counter()
    clock = VirtualClock()
    day_s = hours * 3600
    session_s = (day_s - break_s * (sessions - 1)) / sessions
    seq = [0]
    decoder = StreamDecoder()
    state: dict[str, Any] = {"stats": None, "telemetry": 0, "last_tseq": None, "lost": 0,
                             "replies": {}}
    samples: list[tuple[str, float, int, int, int]] = []  # label, h, traced B, RSS kB, objects
    with tempfile.TemporaryDirectory(prefix="smp-soak-") as tmp, \
            PenSimulator(seed=seed, clock=clock) as sim, PassLog(
                os.path.join(tmp, "passlog.sqlite")) as log:
        sim.advance(0.1)
        port = sim.open_port()

        def pump() -> None:
            for frame in decoder.feed(port.read(1 << 16, 0)):
                msg = frame.message
                if msg.TYPE == MsgType.TELEMETRY:
                    state["telemetry"] += 1
                    last = state["last_tseq"]
                    if last is not None and msg.telemetry_seq != last + 1:
                        state["lost"] += 1
                    state["last_tseq"] = msg.telemetry_seq
                    stats = state["stats"]
                    if stats is not None and msg.flags & 1:
                        stats.add(msg.depth_um / 1000, msg.speed_centihz / 100)
                        stats.counters(msg.strokes, msg.impressions)
                elif frame.seq:
                    state["replies"][frame.seq] = msg

        def request(msg: m.Message) -> m.Message:
            seq[0] = seq[0] % 255 + 1
            port.write(encode(msg, seq[0]))
            pump()
            reply = state["replies"].pop(seq[0], None)
            if reply is None or reply.TYPE == MsgType.NACK:
                raise AssertionError(f"{type(msg).__name__} -> {reply}")
            return reply

        def run_for(seconds: float, renew: bool) -> None:
            end = clock.now() + seconds
            while clock.now() < end - 1e-9:
                if renew:
                    request(m.LeaseRenew(lease_ms))
                sim.advance(min(step_s, end - clock.now()))
                pump()

        def measure(label: str) -> None:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] if trace else 0
            samples.append((label, clock.now() / 3600, traced, _rss_kb(), len(gc.get_objects())))

        request(m.SetTelemetryRate(telemetry_hz))
        if trace:
            tracemalloc.start()
        passes = 0
        day_start = clock.now()
        try:
            for s in range(sessions):
                session_id = log.open_session(
                    technician="campaign", client_ref=f"C-{s:04d}", session_kind="base_density",
                    pen_serial=sim.serial, firmware_version="1.0.0", calibration_id="soak",
                    profile_hash="0" * 64, screening=SCREENING_CLEAR, simulated=True)
                end = day_start + s * (session_s + break_s) + session_s
                index = 0
                while clock.now() + pass_s + rest_s <= end:
                    depth_um = 800 + 10 * (index % 20)
                    request(m.SetSetpoints(depth_um, 9000 + index % 50, 400, 120_000))
                    request(m.LeaseRenew(lease_ms))
                    request(m.Arm())
                    pass_id = log.begin_pass(session_id, index=index, zone="crown",
                                             depth_mm=depth_um / 1000, speed_hz=90.0,
                                             duty_pct=40.0, period_ms=120.0,
                                             started_at=_virtual_dt(clock))
                    state["stats"] = PassStats()
                    request(m.NeedleStart())
                    run_for(pass_s, renew=True)
                    request(m.NeedleStop())
                    request(m.Disarm())
                    stats, state["stats"] = state["stats"], None
                    log.end_pass(pass_id, outcome=PassOutcome.completed, stats=stats,
                                 ended_at=_virtual_dt(clock))
                    passes += 1
                    index += 1
                    if s == 0 and index == 1:
                        measure("start (after the first pass)")
                    run_for(rest_s, renew=False)
                    if (len(samples) == 1 and s == sessions // 2
                            and clock.now() - day_start >= day_s / 2):
                        measure("middle")
                log.close_session(session_id, closed_at=_virtual_dt(clock),
                                  summary={"passes": index})
                if s < sessions - 1:
                    run_for(break_s, renew=False)
            run_for(max(0.0, day_start + day_s - clock.now()), renew=False)
            measure("end")
        finally:
            if trace:
                tracemalloc.stop()
        logged = len(log.passes())
        broken = log.verify()
        faults = Fault(sim.firmware.faults)
        port.close()
    if len(samples) < 3:
        res.fail(f"memory samples missing: {samples}")
    else:
        (_, _, tr0, rss0, ob0), (_, _, tr1, _rss1, ob1), (_, _, tr2, rss2, ob2) = samples[:3]
        if tr2 - tr0 > 1_000_000 or tr2 - tr1 > 500_000:
            res.fail(f"traced memory grew: {tr0} -> {tr1} -> {tr2} bytes")
        if rss2 - rss0 > 10_240:
            res.fail(f"RSS grew by {rss2 - rss0} kB")
        if ob2 - ob0 > 2_000 or ob2 - ob1 > 1_000:
            res.fail(f"live objects grew: {ob0} -> {ob1} -> {ob2}")
    if logged != passes:
        res.fail(f"{passes} passes run, {logged} in the pass log")
    if broken is not None:
        res.fail(f"pass log chain broken: {broken}")
    if faults:
        res.fail(f"the pen latched {faults!r} during the day")
    if state["lost"]:
        res.fail(f"{state['lost']} telemetry gaps")
    res.figures = {
        "virtual hours": round((clock.now() - day_start) / 3600, 2), "sessions": sessions,
        "passes (logged)": logged, "telemetry frames": state["telemetry"],
        "telemetry gaps": state["lost"],
    }
    for label, hour, traced, rss, objects in samples:
        key = f"{label.split()[0]} @{hour:.1f} h RSS MB / objects" + (" / traced kB" if trace
                                                                     else "")
        res.figures[key] = f"{rss / 1024:.1f} / {objects:,}" + (
            f" / {traced / 1024:.0f}" if trace else "")
    res.seconds = time.perf_counter() - t0
    return res


def _virtual_dt(clock):
    from datetime import UTC, datetime, timedelta

    return datetime(2026, 1, 5, 8, 0, tzinfo=UTC) + timedelta(seconds=clock.now())
