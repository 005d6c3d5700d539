"""Resumed sessions replayed part by part: `smp replay` and `smp replay --into-sim` (issue 15.3).

    .venv/bin/python bench/replay_parts.py            # 10 sessions of each kind
    .venv/bin/python bench/replay_parts.py --count 3

Each session runs on the virtual-time simulator (4 passes of 0.4 s), is interrupted in part 1,
and resumed for part 2 (the passes left), in three kinds:
- jam     a jam window of the fault spec (`jam@T-T+0.1`, T = 0.45 + 0.07 n s of pen time); the
          pen cleared on the same connection; part 2 on the same pen;
- estop   an E-stop at 0.3 + 0.09 n s, reset on the same connection;
- restart a lasting jam (`jam@T`) on a pen switched on again for part 2 (another simulator,
          another connection: it jams there again), left open.
Then both replays of every session (`--into-sim` with the session's fault spec). Prints how
many match and the wall time of one `--into-sim`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration
from smpdevice.link.clock import VirtualTimeDriver
from smpdevice.passlog import PassLog
from smpdevice.replay.into_sim import replay_into_sim
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.profiles import load_profile
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLEAR = {q: False for q in ("open_sores", "eczema", "dermatitis", "psoriasis_flare",
                            "infection", "sunburn", "keloid_tendency")}


@contextlib.contextmanager
def pen_on(spec: str | None) -> Iterator[tuple[Any, PenController]]:
    clock = VirtualClock()
    with PenSimulator(seed=7, clock=clock, link_faults=spec) as sim:
        sim.advance(0.06)
        driver = VirtualTimeDriver(clock, 0.005, name="bench-time")
        driver.start()
        cal = Calibration.linear(pen_serial=sim.serial, technician="bench",
                                 offset_mm=-sim.model.offset_mm, gain=sim.model.gain)
        pen = PenController.connect(sim.url, calibration=cal, lease_ms=200, clock=clock)
        try:
            yield sim, pen
        finally:
            pen.close()
            driver.close()


def profile() -> Any:
    base = load_profile(EXAMPLES / "session1_base_density.yaml")
    plan = [p.model_copy(update={"duration_s": 0.4, "impressions": None})
            for p in base.plan][:4]
    return base.model_copy(update={"plan": plan})


def first_part(pen: PenController, log: PassLog, before_play: Callable[[], None]) -> str:
    session = TreatmentSession.open(pen, log, profile(), technician="ana",
                                    screening=parse_screening(CLEAR))
    before_play()
    session.play()
    session.suspend()
    return session.session_id


def at(clock: Any, delay_s: float, action: Callable[[], object]) -> None:
    """`action` in a thread of its own once `delay_s` of virtual time has passed."""
    import threading

    due_s = clock.now() + delay_s

    def check(now_s: float) -> None:
        if now_s + 1e-9 >= due_s:
            clock.remove_listener(check)
            threading.Thread(target=action, daemon=True).start()

    clock.on_advance(check)


def jam(n: int, log: PassLog) -> tuple[str, str | None]:
    t_s = 0.45 + 0.07 * n
    spec = f"jam@{t_s:.2f}-{t_s + 0.1:.2f}"
    with pen_on(spec) as (sim, pen):
        sid = first_part(pen, log, lambda: None)
        while sim.firmware.uptime_ms < (t_s + 0.15) * 1000:
            pen.pause(0.05)
        pen.clear_faults()
        resume_and_close(pen, log, sid)
    return sid, spec


def resume_and_close(pen: PenController, log: PassLog, sid: str) -> None:
    """Part 2: what is left of `sid`, played to its close."""
    resumed = resume_session(pen, log, sid, technician="bo")
    resumed.play()
    resumed.close()


def estop(n: int, log: PassLog) -> tuple[str, str | None]:
    with pen_on(None) as (sim, pen):
        sid = first_part(pen, log, lambda: at(sim.clock, 0.3 + 0.09 * n, pen.estop))
        pen.clear_faults()
        resume_and_close(pen, log, sid)
    return sid, None


def restart(n: int, log: PassLog) -> tuple[str, str | None]:
    spec = f"jam@{0.45 + 0.07 * n:.2f}"
    with pen_on(spec) as (_, pen):
        sid = first_part(pen, log, lambda: None)
    with pen_on(spec) as (_, pen):
        resumed = resume_session(pen, log, sid, technician="bo")
        resumed.play()
        resumed.suspend()
    return sid, spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    for name, case in (("jam", jam), ("estop", estop), ("restart", restart)):
        plain = into = 0
        walls: list[float] = []
        frames: list[int] = []
        for n in range(args.count):
            with tempfile.TemporaryDirectory() as d, \
                    PassLog.open(Path(d) / "passlog.sqlite") as log:
                sid, spec = case(n, log)
                plain += replay_session(log, sid).match
                start = time.perf_counter()
                report = replay_into_sim(log, sid, faults=spec)
                walls.append(time.perf_counter() - start)
                into += report.match
                frames.append(report.decisions)
                if not report.match:
                    print(f"  {name} {n}: {report.difference}")
        print(f"{name:8} sessions {args.count}  smp replay match {plain}  --into-sim match "
              f"{into}  host frames {min(frames)}-{max(frames)}  --into-sim wall "
              f"{min(walls):.3f}-{max(walls):.3f} s")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
