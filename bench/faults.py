"""Fault campaign: the system under load, link and device faults, bad input, crashes and full disks.

    .venv/bin/python bench/faults.py                  # every scenario, full counts (~18 min)
    .venv/bin/python bench/faults.py commands fuzz    # some scenarios
    .venv/bin/python bench/faults.py --quick          # small counts (a smoke run)

Scenarios (each also a function `scenario_<name>(...)` that tests call with smaller counts):

- commands    10,000 distinct SET_SETPOINTS over a link with 1 % flipped bits and 1 % dropped
              bytes (both ways): each completes exactly once on the pen or fails with a clear
              error; none executed twice; every call bounded (pen and host on one virtual
              clock, so the bound is checked on a clock a loaded machine cannot starve).
- fuzz        1,000,000 random and mutated byte strings into `StreamDecoder` and into the
              simulator firmware's receive path (`PenFirmware.receive_now`): no exception, no
              corrupted frame accepted (a decoded frame that is not one of the frames the input
              was built from, byte for byte) (bench/faults_fuzz.py).
- kills       100 treatment sessions, each controller process SIGKILLed at a random moment: the
              needle stops within the lease of the last renewal the pen received (pen's clock);
              on restart (pass-log recovery) every committed pass is present and the interrupted
              one is recorded as controller_crashed (bench/faults_sessions.py).
- disconnects 100 cable pulls while the needle runs (in turn: in-process port errors, a PTY that
              goes silent, a stalled link on a virtual clock): the pen stops the needle within
              one lease of the pull (pen's clock, every pull), the host reports the loss (within
              two leases on the virtual clock; wall-clock delays measured), the needle never
              resumes by itself, reconnect on request works (bench/faults_disconnects.py).
- disk        the pass log fails (disk full, read-only) before the pass, or the moment the pen
              starts the needle: needle stopped, a clear error, nothing committed lost.
- soak        an eight-hour clinic day (three sessions) on the virtual clock, a host driving the
              simulator directly, every pass in a real pass log; memory at start, middle and end
              (bench/faults_soak.py).
- estop       100 E-stops over a link that drops only ESTOP frames, with the needle running
              (plus 30 each: only LEASE_RENEW passes, every host frame lost, ESTOP 2 leases
              late): the needle stops within one lease every time, timed on the simulator's
              clock (bench/faults_failsafe.py).
- bombs       hostile files (alias bomb, 50 MB, 25,000-char needle, 1.69M-pass plan, deep
              nesting, duplicate keys, ...) through load_profile / load_envelope, each in a
              fresh process: refused with a typed error; time and peak memory of the refusal.
- tamper      40 runs of each attack on a real pass log by someone without the installation key
              (cut tail + head rewritten, head dropped, emptied, forged record, rollback, whole
              data directory swapped, re-signed with another key), positions drawn per run:
              caught/total per attack; the swapped directory by a kept receipt and by the
              central PostgreSQL store (bench/faults_tamper.py).

Prints one line per scenario and a results table; exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.campaign_core import Result, _calibration, _fmt, _median, _wait  # noqa: E402,F401
from bench.faults_disconnects import (  # noqa: E402,F401
    HOST_WAIT_S,
    PenStops,
    pen_time_at,
    scenario_disconnects,
    starve,
)
from bench.faults_failsafe import scenario_bombs, scenario_estop  # noqa: E402,F401
from bench.faults_fuzz import scenario_fuzz, scenario_residual  # noqa: E402,F401
from bench.faults_sessions import scenario_disk, scenario_kills  # noqa: E402,F401
from bench.faults_soak import scenario_soak  # noqa: E402,F401
from bench.faults_tamper import scenario_tamper  # noqa: E402,F401
from firmware_protocol import messages as m  # noqa: E402
from firmware_protocol import units  # noqa: E402
from firmware_protocol.codes import MsgType  # noqa: E402

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
        cal = _calibration(sim)
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
        "reconnects": reconnects, "median call ms (link's clock)": _median(durations) * 1e3,
        "max call ms (link's clock)": max(durations) * 1e3, "bound ms": bound_s * 1e3,
        "median / max call ms (wall, measured)": (
            f"{_median(wall) * 1e3:.2f} / {max(wall) * 1e3:.0f}"),
    }
    res.seconds = time.perf_counter() - t0
    return res


# ============================================================================ the campaign

FULL: dict[str, dict[str, Any]] = {
    "commands": {"n": 10_000}, "fuzz": {"n": 1_000_000}, "kills": {"n": 100},
    "disconnects": {"n": 100}, "disk": {}, "soak": {"hours": 8.0},
    "estop": {"n": 100, "variant_n": 30}, "bombs": {}, "tamper": {"runs": 40},
}
QUICK: dict[str, dict[str, Any]] = {
    "commands": {"n": 300}, "fuzz": {"n": 20_000}, "kills": {"n": 4},
    "disconnects": {"n": 6}, "disk": {}, "soak": {"hours": 0.5, "break_s": 60, "pass_s": 60},
    "estop": {"n": 6, "variant_n": 3}, "bombs": {}, "tamper": {"runs": 3},
}


def run(names: list[str], quick: bool = False, echo: Callable[[str], None] = print
        ) -> list[Result]:
    results = []
    for name in names:
        kwargs = (QUICK if quick else FULL).get(name, {"n": 50_000} if quick else {})
        echo(f"-- {name} {kwargs} ...")
        result = globals()[f"scenario_{name}"](**kwargs)
        echo(f"   {'PASS' if result.ok else 'FAIL'} in {result.seconds:.0f} s: {result.summary()}")
        for line in getattr(result, "details", [])[:20]:
            echo(f"   . {line}")
        for failure in result.failures[:10]:
            echo(f"   ! {failure}")
        results.append(result)
    return results


def table(results: list[Result]) -> str:
    lines = ["| scenario | count | result | figures | wall s |", "|---|---:|---|---|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.count:,} | {'PASS' if r.ok else 'FAIL'} | "
                     f"{r.summary()} | {r.seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[*FULL, "residual", []],
                        metavar="SCENARIO", help=f"any of {', '.join(FULL)} (default: all), or "
                        "residual (the CRC's residual, 2M inputs; not in the default run)")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args(argv)
    from smpdevice.logs import configure

    configure("critical")  # expected faults would flood the output; the table says it all
    results = run(args.scenarios or list(FULL), quick=args.quick)
    print()
    print(table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
