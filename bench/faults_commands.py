"""Fault campaign, commands (bench/faults.py commands): 10,000 distinct SET_SETPOINTS over a
link with 1 % flipped bits and 1 % dropped bytes; each completes exactly once on the pen or
fails with a clear error, none executed twice, every call bounded on the shared virtual clock."""

from __future__ import annotations

import threading
import time
from collections import Counter

from bench.campaign_core import Result, median, sim_calibration, starve
from firmware_protocol import messages as m
from firmware_protocol import units
from firmware_protocol.codes import MsgType

# ============================================================================ 1. commands


def _setpoint(i: int) -> dict[str, float]:
    """The i-th command: distinct for i < 14,000 (speed in 0.01 Hz steps, then duty)."""
    return dict(depth_mm=0.30 + (i % 41) / 100, speed_hz=60.0 + (i % 7000) / 100,
                duty_pct=30.0 + i // 7000, period_ms=100.0)


def scenario_commands(n: int = 10_000, seed: int = 11, lease_ms: int = 1000,
                      starve_s: float = 0.0) -> Result:
    """n distinct setpoints over LinkFaultConfig(flip_p=0.01, drop_p=0.01). Pen and host share
    the simulator's virtual clock (a driver advances it whenever the host has caught up), so
    "every call bounded" is checked on a clock a loaded machine cannot starve; the wall time of
    each call is a figure. `starve_s` holds the simulator that long during one call in 100."""
    from simulators import LinkFaultConfig, PenSimulator, VirtualClock
    from smpdevice.control import PenController, State
    from smpdevice.errors import SmpError
    from smpdevice.link import LinkError
    from smpdevice.link.clock import VirtualTimeDriver

    res = Result("commands", n)
    t0 = time.perf_counter()
    faults = LinkFaultConfig(flip_p=0.01, drop_p=0.01)
    executed: Counter[bytes] = Counter()  # SET_SETPOINTS payloads the pen executed (ACKed)
    foreign: list[tuple[int, bytes]] = []  # executed payloads the host never sent
    durations: list[float] = []  # virtual (the pen's and the host's clock)
    wall: list[float] = []
    completed = failed_clear = failed_other = reconnects = 0
    clock = VirtualClock()
    with PenSimulator(seed=seed, link_faults=faults, clock=clock) as sim:
        sim.advance(0.1)  # booted
        fw = sim.firmware
        current_seq = [0]
        original_dispatch, original_execute = fw._dispatch, fw._execute

        def dispatch(frame, superseded=False):
            current_seq[0] = frame.seq
            return original_dispatch(frame, superseded)

        def execute(mtype, msg):
            reply = original_execute(mtype, msg)
            if mtype is MsgType.SET_SETPOINTS and reply.TYPE == MsgType.ACK:
                executed[msg.pack()] += 1
            return reply

        fw._dispatch, fw._execute = dispatch, execute
        cal = sim_calibration(sim)
        driver = VirtualTimeDriver(clock, 0.002, name="campaign-time")
        driver.start()
        pen = PenController.connect(sim.url, calibration=cal, lease_ms=lease_ms, clock=clock)
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
                t, t_wall = clock.now(), time.perf_counter()
                if starve_s and i % 100 == 50:
                    threading.Thread(target=starve, args=(sim, starve_s), daemon=True).start()
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
                dt = clock.now() - t
                durations.append(dt)
                wall.append(time.perf_counter() - t_wall)
                if dt > bound_s:
                    res.fail(f"command {i} took {dt:.2f} s of the link's clock (bound "
                             f"{bound_s:.2f} s)")
            stats = pen.link.stats
            retransmissions, duplicates = stats.retransmissions, fw.duplicates
        finally:
            pen.close()
            driver.close()
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
        "reconnects": reconnects, "median call ms (link's clock)": median(durations) * 1e3,
        "max call ms (link's clock)": max(durations) * 1e3, "bound ms": bound_s * 1e3,
        "median / max call ms (wall, measured)": (
            f"{median(wall) * 1e3:.2f} / {max(wall) * 1e3:.0f}"),
    }
    res.seconds = time.perf_counter() - t0
    return res
