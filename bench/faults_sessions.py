"""Fault campaign, sessions (bench/faults.py kills, disk): controller processes SIGKILLed
mid-session, and a pass log that fails (disk full, read-only) before and during a pass."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from bench.campaign_core import (
    HOST_WAIT_S,
    SCREENING_CLEAR,
    TICK_EPS_S,
    PenStops,
    Result,
    median,
    pen_time_at,
    sim_calibration,
    starve,
    starve_host,
    wait_until,
)
from firmware_protocol.codes import FirmwareState, MsgType

ROOT = Path(__file__).resolve().parent.parent

# ============================================================================ 3. kills


def _profile_data(passes: int, duration_s: float, client_ref: str = "C-0008") -> dict:
    zones = {
        "crown": dict(needle="1RL 0.25mm", depth_mm=0.40, speed_hz=90, duty_pct=40,
                      period_ms=120),
        "top": dict(needle="1RL 0.25mm", depth_mm=0.45, speed_hz=95, duty_pct=40,
                    period_ms=120),
    }
    plan = [dict(zone=("crown", "top")[i % 2], duration_s=duration_s) for i in range(passes)]
    return dict(schema_version=1, session_kind="base_density", client_ref=client_ref,
                zones=zones, plan=plan)


KILL_HOST = textwrap.dedent(
    """
    import json, sys, time
    from smpdevice.control.calibration import Calibration
    from smpdevice.control import PenController
    from smpdevice.logs import configure
    from smpdevice.passlog import PassLog
    from smpdevice.sessions.profiles import parse_profile
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    configure("error")
    path, serial_no, offset_mm, gain, lease_ms, db, profile, screening = sys.argv[1:9]
    cal = Calibration.linear(pen_serial=serial_no, technician="t",
                             offset_mm=float(offset_mm), gain=float(gain))
    log = PassLog(db)  # a writer: recovers whatever the previous (killed) process left
    print("recovered", json.dumps(log.recovered), flush=True)
    pen = PenController.connect(path, calibration=cal, lease_ms=int(lease_ms))
    begin = log.begin_pass
    def begin_pass(*a, **k):
        pass_id = begin(*a, **k)
        print("begin", pass_id, flush=True)
        return pass_id
    log.begin_pass = begin_pass
    session = TreatmentSession.open(pen, log, parse_profile(json.loads(profile)),
                                    technician="campaign",
                                    screening=parse_screening(json.loads(screening)))
    print("session", session.session_id, flush=True)
    for i, planned in enumerate(session.profile.plan):
        r = session.run_pass(planned, index=i)
        print("committed", r.pass_id, r.outcome.value, flush=True)
        if r.outcome.value != "completed":
            break  # a session cut short is resumed, not played on
    session.close()
    print("closed", flush=True)
    time.sleep(60)
    """
)


def scenario_kills(n: int = 100, seed: int = 31, lease_ms: int = 250, passes: int = 3,
                   pass_s: float = 0.4, starve_s: float = 0.0) -> Result:
    """n sessions, each controller process SIGKILLed at a random moment. The needle's stop is
    timed on the pen's clock (bench/faults_disconnects.py `PenStops`): it must come within one
    lease of the last renewal the pen received; `starve_s` holds the simulator right after each
    kill, as a loaded machine does, and changes nothing of that."""
    import json

    from simulators import PenSimulator
    from simulators.reach import PtyBridge
    from smpdevice.passlog import PassLog

    res = Result("kills", n)
    t0 = time.perf_counter()
    rng = random.Random(seed)
    stop_after: list[float] = []  # pen's clock: the stop tick minus the kill
    killed_running = killed_idle = recovered_ok = renewed_after_kill = 0
    committed: dict[str, str] = {}  # pass_id -> outcome, as the killed processes reported
    interrupted: set[str] = set()
    profile = json.dumps(_profile_data(passes, pass_s))
    screening = json.dumps(SCREENING_CLEAR)
    with tempfile.TemporaryDirectory(prefix="smp-kills-") as tmp:
        db = os.path.join(tmp, "passlog.sqlite")
        expect_recovered: set[str] = set()
        for it in range(n):
            with PenSimulator(seed=seed) as sim, PtyBridge(sim) as bridge:
                stops = PenStops(sim.firmware)
                child = subprocess.Popen(
                    [sys.executable, "-c", KILL_HOST, bridge.path, sim.serial,
                     str(-sim.model.offset_mm), str(sim.model.gain), str(lease_ms), db,
                     profile, screening],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                lines: list[str] = []
                reader = threading.Thread(
                    target=lambda c=child, out=lines: out.extend(iter(c.stdout.readline, "")),
                    daemon=True)
                reader.start()
                try:
                    if not wait_until(lambda out=lines: any(x.startswith("session") for x in out),
                                 20.0, 0.005):
                        child.kill()
                        res.fail(f"session {it}: the host did not open a session: "
                                 f"{lines} {child.stderr.read()[-2000:]}")
                        continue
                    time.sleep(rng.uniform(0.0, passes * (pass_s + 0.1) + 0.2))
                    stops.rearm()
                    running: list[bool] = []

                    def kill(fw=sim.firmware, pid=child.pid, running=running) -> None:
                        running.append(fw.state is FirmwareState.RUNNING)
                        os.kill(pid, signal.SIGKILL)

                    killed_s = pen_time_at(sim, kill)
                    starve(sim, starve_s)
                    child.wait(timeout=HOST_WAIT_S)
                    reader.join(timeout=2)
                    if running[0] or stops.stop_s is not None:
                        killed_running += 1
                        if not wait_until(lambda s=sim, w=stops: s.sync() or w.stop_s is not None,
                                     HOST_WAIT_S):
                            res.fail(f"session {it}: the needle kept running after the kill")
                            continue
                        stop_after.append(stops.stop_s - killed_s)
                        granted_s = stops.granted_at_stop_s
                        if granted_s is not None and granted_s > killed_s:
                            renewed_after_kill += 1  # written before the kill, read after it
                        if (granted_s is None
                                or stops.stop_s - granted_s > lease_ms / 1000 + TICK_EPS_S):
                            res.fail(f"session {it}: the needle stopped at {stops.stop_s:.3f} s,"
                                     f" its last lease was granted at {granted_s} s (pen's "
                                     f"clock; lease {lease_ms} ms)")
                    else:
                        killed_idle += 1
                finally:
                    if child.poll() is None:
                        child.kill()
                        child.wait()
            # what the killed process said
            rec = next((x for x in lines if x.startswith("recovered")), None)
            if rec is not None:
                got = set(json.loads(rec.split(" ", 1)[1]))
                if got != expect_recovered:
                    res.fail(f"session {it}: recovery closed {sorted(got)}, "
                             f"expected {sorted(expect_recovered)}")
                else:
                    recovered_ok += bool(got)
            begun = [x.split()[1] for x in lines if x.startswith("begin")]
            done = {x.split()[1]: x.split()[2] for x in lines if x.startswith("committed")}
            committed.update(done)
            open_passes = [p for p in begun if p not in done]
            interrupted.update(open_passes)
            # the next process's recovery must close the begun pass, unless it was committed
            # between the write and the print (then it is simply present)
            expect_recovered = set(open_passes)
            if open_passes:
                with PassLog(db, readonly=True) as ro:
                    ended = {p.pass_id for p in ro.passes() if p.outcome is not None}
                expect_recovered -= ended
        # the final restart: recover the last kill, then check the whole history
        with PassLog(db) as log:
            if set(log.recovered) != expect_recovered:
                res.fail(f"final recovery closed {log.recovered}, expected {expect_recovered}")
            records = {p.pass_id: p for p in log.passes()}
            broken = log.verify()
    missing = [p for p in committed if p not in records]
    changed = [p for p, o in committed.items() if p in records and
               str(getattr(records[p].outcome, "value", records[p].outcome)) != o]
    unrecorded = [p for p in interrupted if p not in records or records[p].outcome is None]
    crashed = sum(1 for p in interrupted if p in records and
                  str(getattr(records[p].outcome, "value", records[p].outcome))
                  == "controller_crashed")
    if missing:
        res.fail(f"{len(missing)} committed passes missing after restart: {missing[:3]}")
    if changed:
        res.fail(f"{len(changed)} committed passes changed outcome: {changed[:3]}")
    if unrecorded:
        res.fail(f"{len(unrecorded)} interrupted passes not recorded: {unrecorded[:3]}")
    if broken is not None:
        res.fail(f"the pass log's chain is broken: {broken}")
    res.figures = {
        "killed while the needle ran": killed_running, "killed with the needle off": killed_idle,
        "median stop after kill ms (pen's clock)": median(stop_after) * 1e3,
        "max stop after kill ms (pen's clock)": max(stop_after, default=float("nan")) * 1e3,
        "lease ms": lease_ms, "a renewal reached the pen after the kill": renewed_after_kill,
        "committed passes": len(committed),
        "committed present after restart": len(committed) - len(missing),
        "interrupted passes": len(interrupted),
        "recorded as controller_crashed": crashed,
        "chain verified": broken is None,
    }
    res.seconds = time.perf_counter() - t0
    return res


# ============================================================================ 5. disk


class _FailingConnection:
    """Stands in for the pass log's sqlite3 connection. Once `armed` (at once, or by the pen
    starting the needle: an event, not a timer, so a loaded machine cannot move it before the
    pass or past its end): "full" makes writes fail as on a full disk; "readonly" turns the real
    connection read-only (`PRAGMA query_only`) at its next use, so SQLite itself refuses."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "COMMIT", "REPLACE")

    def __init__(self, real: sqlite3.Connection, how: str = "full",
                 error: str = "database or disk is full"):
        self._real = real
        self.how = how
        self.error = error
        self.armed = False
        self.failed = 0
        self._read_only = False

    def _use(self) -> sqlite3.Connection:
        if self.armed and self.how == "readonly" and not self._read_only:
            self._read_only = True
            self._real.execute("PRAGMA query_only = 1")
        return self._real

    def execute(self, sql: str, *args: Any):
        if self.armed and self.how == "full" and sql.lstrip().upper().startswith(self.WRITES):
            self.failed += 1
            raise sqlite3.OperationalError(self.error)
        return self._use().execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._use(), name)


def scenario_disk(seed: int = 61, lease_ms: int = 250, starve_s: float = 0.0) -> Result:
    """The pass log fails before and during a pass (disk full, read-only): needle stopped,
    clear error, nothing committed lost. "During" is the moment the pen starts the needle;
    `starve_s` holds the host's loop that long as that pass begins (a loaded machine)."""
    from simulators import PenSimulator, VirtualClock
    from smpdevice.control import PenController, State
    from smpdevice.link.clock import VirtualTimeDriver
    from smpdevice.passlog import PassLog, PassLogError
    from smpdevice.sessions.profiles import parse_profile
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession

    res = Result("disk", 0)
    t0 = time.perf_counter()
    cases = [  # (name, when, how)
        ("disk full before the pass", "before", "full"),
        ("disk full during the pass", "during", "full"),
        ("read-only before the pass", "before", "readonly"),
        ("read-only during the pass", "during", "readonly"),
    ]
    rows: list[str] = []
    for name, when, how in cases:
        res.count += 1
        # pen and host on one virtual clock: a loaded machine cannot make the pen look silent
        # (a starved in-process simulator once did, at load 12) or move the pass in time
        with tempfile.TemporaryDirectory(prefix="smp-disk-") as tmp, \
                PenSimulator(seed=seed, clock=VirtualClock()) as sim:
            sim.advance(0.1)  # booted
            driver = VirtualTimeDriver(sim.clock, 0.002, name="campaign-time")
            driver.start()
            db = os.path.join(tmp, "passlog.sqlite")
            fw = sim.firmware
            pen = PenController.connect(sim.url, calibration=sim_calibration(sim),
                                        lease_ms=lease_ms, clock=sim.clock)
            log = PassLog(db)
            profile = parse_profile(_profile_data(3, 0.4 if when == "before" else 2.0))
            session = TreatmentSession.open(pen, log, profile, technician="campaign",
                                            screening=parse_screening(SCREENING_CLEAR))
            done = [session.run_pass(p, index=i) for i, p in enumerate(profile.plan[:2])]
            committed = {r.pass_id: r.outcome.value for r in done}
            starts = fw.executed[MsgType.NEEDLE_START]
            with log._lock:
                failing = _FailingConnection(log._conn, how)
                log._conn = failing
            failing.armed = when == "before"
            original_execute = fw._execute

            def execute(mtype, msg, failing=failing, original=original_execute):
                reply = original(mtype, msg)
                if mtype is MsgType.NEEDLE_START and reply.TYPE == MsgType.ACK:
                    failing.armed = True  # the log fails the moment the needle runs
                return reply

            fw._execute = execute
            if when == "during":
                starve_host(pen, starve_s)  # the pass begins that much later
            error: BaseException | None = None
            running_after = None
            try:
                session.run_pass(profile.plan[2], index=2)
            except PassLogError as exc:
                error = exc
                running_after = fw.state is FirmwareState.RUNNING
            except Exception as exc:  # anything else is a finding
                error = exc
            fw._execute = original_execute
            started = fw.executed[MsgType.NEEDLE_START] - starts
            text = str(error) if error else ""
            hint = "disk is full" if how == "full" else "read-only"
            if not isinstance(error, PassLogError):
                res.fail(f"{name}: expected PassLogError, got {type(error).__name__}: {error}")
            elif hint not in text:
                res.fail(f"{name}: the error does not say '{hint}': {text}")
            if running_after:
                res.fail(f"{name}: the needle was still running when the error was raised")
            if fw.state is FirmwareState.RUNNING or pen.state is State.RUNNING:
                res.fail(f"{name}: the needle runs after the log failed")
            if when == "before" and started:
                res.fail(f"{name}: the needle started although the pass could not be recorded")
            if when == "during" and not started:
                res.fail(f"{name}: the pass never started (the fault came too early)")
            pen.close()
            driver.close()
            with contextlib.suppress(Exception):
                log.close()
            # restart: a new process opens the log (recovery) once the disk is usable again
            with PassLog(db) as again:
                records = {p.pass_id: p for p in again.passes()}
                broken = again.verify()
                recovered = list(again.recovered)
            lost = [p for p, o in committed.items()
                    if p not in records or str(getattr(records[p].outcome, "value",
                                                       records[p].outcome)) != o]
            if lost:
                res.fail(f"{name}: committed passes lost or changed: {lost}")
            if broken is not None:
                res.fail(f"{name}: chain broken after the failure: {broken}")
            third = [p for p in records.values() if p.pass_id not in committed]
            if when == "during" and (len(third) != 1 or third[0].outcome is None):
                res.fail(f"{name}: the interrupted pass is not recorded: {third}")
            if when == "before" and third:
                res.fail(f"{name}: a pass that could not begin was recorded: {third}")
            outcome = (str(getattr(third[0].outcome, "value", third[0].outcome))
                       if third else "not begun")
            rows.append(f"{name}: needle started {started}x, stopped, committed "
                        f"{len(committed) - len(lost)}/{len(committed)} kept, interrupted pass "
                        f"-> {outcome}{' (recovered on open)' if recovered else ''}; "
                        f"error: {text[:90]}...")
    res.figures = {"cases": res.count, "cases passed": res.count - len(
        {f.split(':')[0] for f in res.failures})}
    res.details = rows  # type: ignore[attr-defined]
    res.seconds = time.perf_counter() - t0
    return res
