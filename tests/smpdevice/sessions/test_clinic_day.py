"""An eight-hour clinic day on virtual time: the real PenController and TreatmentSession, many
sessions, every pass in a real pass log, and memory that stays flat (issue 13, item 8).

Slow (`-m slow`): the simulated firmware ticks every virtual millisecond, so the day costs
minutes of CPU. `SMP_SOAK_HOURS` shortens it (e.g. 0.25) for a quick look. The day's figures
(hours, sessions, passes, memory, frames, wall time) are printed (`pytest -s`) and written to
`clinic_day.json` in the test's tmp dir; `bench/soak.py` runs the same day and prints them.
"""

from __future__ import annotations

import gc
import json
import os
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from firmware_protocol.codes import Fault
from smpdevice.control.controller import PenController
from smpdevice.control.states import State
from smpdevice.passlog import PassLog
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.sessions.test_session import CLEAR, short_profile
from tests.smpdevice.virtual_time import virtual_sim

HOURS = float(os.environ.get("SMP_SOAK_HOURS", "8"))
PASS_S = 90.0  # needle time of each pass (under every zone's pass-time limit)
PASSES = 4  # per session (client)
BREAK_S = 20 * 60.0  # between clients (a shortened day: an eighth of it)
GROWTH_LIMIT_B = 1_000_000  # traced Python memory, end of day vs after the first session
STEP_S = 0.02  # virtual-time step while a session runs: telemetry runs at 10 Hz
# Between clients the pen is idle (no lease, no needle): one step per telemetry frame is enough
# for every idle duty the host has (telemetry, silence detection at ~2 s), and costs a fifth.
IDLE_STEP_S = 0.1


@dataclass
class DayFigures:
    """What a reader needs to judge one clinic day (bench/soak.py prints these)."""

    hours_requested: float
    virtual_hours: float = 0.0
    sessions: int = 0
    sessions_closed: int = 0  # sessions in the log with a close record
    passes: int = 0  # passes played (every one `completed`)
    passes_logged: int = 0
    chain_verified: bool = False  # `PassLog.verify()` found no broken link
    pen_state_at_end: str = ""
    pen_faults_at_end: int = -1
    traced_first_b: int = 0  # tracemalloc after the first session (after gc)
    traced_end_b: int = 0
    traced_peak_b: int = 0
    traced_per_session_b: list[int] = field(default_factory=list)
    rss_first_kb: int = 0
    rss_end_kb: int = 0
    frames_sent: int = 0
    frames_received: int = 0
    telemetry_received: int = 0
    telemetry_lost: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    clock_steps: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    load_avg_start: tuple[float, ...] = ()
    load_avg_end: tuple[float, ...] = ()
    started_at: str = ""

    @property
    def growth_b(self) -> int:
        return self.traced_end_b - self.traced_first_b

    def lines(self) -> list[str]:
        mb = 1 / 1_000_000
        return [
            f"virtual time / wall time    {self.virtual_hours:.2f} h / {self.wall_s:.0f} s "
            f"(CPU {self.cpu_s:.0f} s)",
            f"sessions opened / closed    {self.sessions} / {self.sessions_closed}",
            f"passes completed / logged   {self.passes} / {self.passes_logged} "
            f"(chain verified: {self.chain_verified})",
            f"traced memory first / end   {self.traced_first_b * mb:.3f} / "
            f"{self.traced_end_b * mb:.3f} MB (growth {self.growth_b:+,} B, "
            f"limit {GROWTH_LIMIT_B:,}; peak {self.traced_peak_b * mb:.3f} MB)",
            f"RSS first / end             {self.rss_first_kb / 1000:.1f} / "
            f"{self.rss_end_kb / 1000:.1f} MB",
            f"frames sent / received      {self.frames_sent:,} / {self.frames_received:,} "
            f"(telemetry {self.telemetry_received:,}, lost {self.telemetry_lost}; "
            f"retransmissions {self.retransmissions}, timeouts {self.timeouts})",
            f"pen at the end              {self.pen_state_at_end}, faults "
            f"{self.pen_faults_at_end:#x}",
            f"load average start / end    {_load(self.load_avg_start)} / "
            f"{_load(self.load_avg_end)}",
        ]


def _load(avg: tuple[float, ...]) -> str:
    return " ".join(f"{x:.2f}" for x in avg) or "n/a"


def _loadavg() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


def rss_kb() -> int:
    """This process's resident set now (Linux: /proc), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def clinic_day(hours: float, directory: Path) -> DayFigures:
    """Clients back to back for `hours` of virtual time: one session each (PASSES passes of
    PASS_S), then a break; every session through `TreatmentSession` on a real `PenController`
    and a real SQLite pass log in `directory`. Memory is traced from the end of the first
    session (tracemalloc, after gc) to the end of the day."""
    from smpdevice.sessions.screening import parse_screening

    fig = DayFigures(hours_requested=hours, load_avg_start=_loadavg(),
                     started_at=datetime.now(UTC).isoformat(timespec="seconds"))
    wall0, cpu0 = time.perf_counter(), time.process_time()
    day_s = hours * 3600
    break_s = min(BREAK_S, day_s / 8)
    tracing = tracemalloc.is_tracing()
    try:
        with virtual_sim(seed=71, step_s=STEP_S) as sim:
            driver = sim.time

            def idle(duration_s: float) -> None:
                """The pen idles (between clients): longer steps, the same host duties."""
                driver.step_s = IDLE_STEP_S
                try:
                    driver.sleep(max(0.0, duration_s))
                finally:
                    driver.step_s = STEP_S

            with PassLog.open(directory / "passlog.sqlite") as passlog, \
                    PenController.connect(sim.url, calibration=true_calibration(sim),
                                          lease_ms=1000, telemetry_hz=10,
                                          clock=sim.clock) as pen:
                start_s = sim.clock.now()
                profile = short_profile(PASS_S, passes=PASSES)
                while sim.clock.now() - start_s + PASSES * PASS_S + 60 < day_s:
                    session = TreatmentSession.open(pen, passlog, profile, technician="ana",
                                                    screening=parse_screening(CLEAR))
                    results = session.play()
                    session.close()
                    fig.sessions += 1
                    fig.passes += len(results)
                    outcomes = [r.outcome.value for r in results]
                    assert outcomes == ["completed"] * PASSES, f"session {fig.sessions}"
                    del session, results
                    gc.collect()
                    if fig.sessions == 1:
                        if not tracing:
                            tracemalloc.start()
                        tracemalloc.reset_peak()
                        fig.rss_first_kb = rss_kb()
                    fig.traced_per_session_b.append(tracemalloc.get_traced_memory()[0])
                    idle(min(break_s, day_s - (sim.clock.now() - start_s)))
                idle(day_s - (sim.clock.now() - start_s))  # no time for one more: closing time
                fig.virtual_hours = (sim.clock.now() - start_s) / 3600
                gc.collect()
                if fig.traced_per_session_b:
                    fig.traced_first_b = fig.traced_per_session_b[0]
                    fig.traced_end_b, fig.traced_peak_b = tracemalloc.get_traced_memory()
                fig.rss_end_kb = rss_kb()
                fig.pen_state_at_end = pen.state.value
                fig.pen_faults_at_end = int(Fault(sim.firmware.faults))
                stats = pen.link.stats if pen.link is not None else None
                if stats is not None:
                    fig.frames_sent, fig.frames_received = stats.tx_frames, stats.rx_frames
                    fig.telemetry_received = stats.telemetry_received
                    fig.telemetry_lost = stats.telemetry_lost
                    fig.retransmissions, fig.timeouts = stats.retransmissions, stats.timeouts
                fig.passes_logged = len(passlog.passes())
                logged_sessions = passlog.sessions()
                fig.sessions_closed = sum(s.closed_at is not None for s in logged_sessions)
                assert len(logged_sessions) == fig.sessions
                fig.chain_verified = passlog.verify() is None
            fig.clock_steps = driver.steps
    finally:
        if not tracing and tracemalloc.is_tracing():
            tracemalloc.stop()
    fig.wall_s = round(time.perf_counter() - wall0, 1)
    fig.cpu_s = round(time.process_time() - cpu0, 1)
    fig.load_avg_end = _loadavg()
    return fig


def write_figures(fig: DayFigures, path: Path) -> Path:
    path.write_text(json.dumps({**asdict(fig), "growth_b": fig.growth_b}, indent=2) + "\n")
    return path


@pytest.mark.slow
def test_an_eight_hour_clinic_day_keeps_memory_flat(tmp_path):
    fig = clinic_day(HOURS, tmp_path)
    report = write_figures(fig, tmp_path / "clinic_day.json")
    print("\nclinic day (" + str(report) + "):\n  " + "\n  ".join(fig.lines()))
    assert fig.pen_state_at_end == State.IDLE.value
    assert fig.pen_faults_at_end == 0
    assert fig.chain_verified
    assert fig.virtual_hours >= HOURS * 0.95
    assert fig.sessions >= max(2, int(HOURS * 2))  # 8 h: about 18 clients
    assert fig.sessions_closed == fig.sessions
    assert fig.passes == PASSES * fig.sessions
    assert fig.passes_logged == fig.passes
    assert fig.telemetry_received > 0 and fig.frames_received >= fig.telemetry_received
    assert fig.growth_b < GROWTH_LIMIT_B, (
        f"memory grew: {fig.traced_per_session_b} -> {fig.traced_end_b} bytes")
