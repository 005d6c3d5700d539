"""Fault campaign, cable pulls (bench/faults.py disconnects) and the pen's own record of a stop.

What a pulled cable is promised, and on which clock it is checked:
- the pen stops the needle by itself within one lease of the pull. Timed on the pen's clock:
  the firmware tick that left RUNNING minus the pen's time at the pull (read under the
  simulator's lock, so no thread's lateness enters either figure). The firmware runs every
  1 ms tick up to "now" whenever it catches up, so a starved tick thread changes when the stop
  is seen, never the tick it happened on. Checked exactly, every pull.
- the host reports the loss (a port error at once; a silent link when no byte came for its
  silence limit, two leases less a margin, judged on the host's clock). That limit is checked
  exactly where the host's clock is the pen's virtual clock: the third way here (a stalled
  link), and `test_stall_is_link_loss_and_the_pen_stops_on_its_own`. On a real-time pen the
  report comes when the host's threads get the CPU: its wall-clock delay is a measured figure,
  and the check is that it comes, and for a silent link that it came from the silence judgement.
- the needle never resumes by itself, and a reconnect finds LEASE_EXPIRED latched.

`starve_s` holds the simulator's lock and the host's loop for that long right after each pull,
as a loaded machine does now and then (bench/faults.py kills uses the same for its simulator):
the checks above must hold all the same (tests/test_campaign.py).
"""

from __future__ import annotations

import contextlib
import random
import time

from bench.campaign_core import (
    HOST_WAIT_S,
    TICK_EPS_S,
    PenStops,
    Result,
    median,
    pen_time_at,
    sim_calibration,
    starve,
)
from firmware_protocol.codes import Fault, FirmwareState, MsgType


def _until(predicate, sim, timeout_s: float = HOST_WAIT_S) -> bool:
    """Wait on a condition (the pen brought up to now first), with a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        sim.sync()
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


class _Rig:
    """One way of pulling the cable, with its pen, controller and clock."""

    def __init__(self, via: str, seed: int, lease_ms: int) -> None:
        from simulators import PenSimulator, VirtualClock
        from simulators.reach import PtyBridge
        from smpdevice.control import PenController, State
        from smpdevice.link.clock import VirtualTimeDriver

        self.via, self.virtual = via, via == "stall"
        self.sim = PenSimulator(seed=seed, clock=VirtualClock() if self.virtual else None)
        self.bridge = PtyBridge(self.sim) if via == "pty" else None
        self.driver = None
        if self.virtual:  # pen and host on one virtual clock, advanced when the host caught up
            self.sim.advance(0.1)
            self.driver = VirtualTimeDriver(self.sim.clock, 0.002, name="campaign-time")
            self.driver.start()
        url = self.bridge.path if self.bridge else self.sim.url
        clock = {"clock": self.sim.clock} if self.virtual else {}
        self.pen = PenController.connect(url, calibration=sim_calibration(self.sim),
                                         lease_ms=lease_ms, **clock)
        self.lost_at: list[float] = []  # wall clock, real-time ways
        self.pen.add_state_listener(
            lambda old, new, why, out=self.lost_at: new is State.DISCONNECTED
            and out.append(time.monotonic()))
        self.stops = PenStops(self.sim.firmware)

    def sleep(self, seconds: float) -> None:
        if self.virtual:
            self.pen.pause(seconds)
        else:
            time.sleep(seconds)

    def pull(self) -> None:
        if self.virtual:  # bytes vanish both ways, as behind a USB adapter: only silence tells
            self.sim.link.stall(self.sim.clock.now())
        else:
            self.sim.disconnect()

    def plug_back(self) -> None:
        if self.virtual:
            self.sim.link.unstall()
        else:
            self.sim.reconnect()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pen.close()
        if self.driver is not None:
            self.driver.close()
        if self.bridge is not None:
            self.bridge.close()
        self.sim.close()


WAYS = ("pensim", "pty", "stall")


def scenario_disconnects(n: int = 100, seed: int = 41, lease_ms: int = 250,
                         starve_s: float = 0.0) -> Result:
    """n cable pulls while running, in turn: in-process (port errors), PTY (silence, real
    time), and a stalled link with pen and host on one virtual clock (silence, where the host's
    two-lease limit is checked exactly)."""
    from smpdevice.control import State
    from smpdevice.errors import SmpError

    res = Result("disconnects", n)
    t0 = time.perf_counter()
    rng = random.Random(seed)
    lease_s = lease_ms / 1000
    detect: dict[str, list[float]] = {way: [] for way in WAYS}  # wall; "stall": virtual
    pen_stop: list[float] = []  # pen's clock: the stop tick minus the pull
    resumed = reconnected = refused_while_lost = stopped_before = setup_retries = 0
    rigs: list[_Rig] = []
    try:
        for k, via in enumerate(WAYS):
            rigs.append(_Rig(via, seed + k, lease_ms))
        for i in range(n):
            rig = rigs[i % len(rigs)]
            via, sim, pen, stops = rig.via, rig.sim, rig.pen, rig.stops
            fw = sim.firmware
            for attempt in range(3):  # a starved host may let the lease lapse while arming,
                try:  # or judge a starved in-process pen silent: both fail safe; try again
                    if pen.state is State.DISCONNECTED:
                        pen.reconnect()
                    if pen.state in (State.FAULT, State.ESTOP):
                        pen.clear_faults()
                    pen.set_zone("crown")
                    pen.set_setpoints(depth_mm=0.5, speed_hz=100, duty_pct=40, period_ms=100)
                    pen.arm()
                    pen.start_needle()
                    break
                except SmpError as exc:
                    setup_retries += 1
                    if attempt == 2:
                        raise AssertionError(f"pull {i} ({via}): the needle could not be "
                                             f"started 3 times: {exc}") from exc
            rig.sleep(rng.uniform(0.0, 0.3))
            starts_before = fw.executed[MsgType.NEEDLE_START]
            rig.lost_at.clear()
            stops.rearm()
            running: list[bool] = []

            def pull(rig=rig, fw=fw, running=running) -> None:
                running.append(fw.state is FirmwareState.RUNNING)
                rig.pull()

            pulled = time.monotonic()
            pulled_s = pen_time_at(sim, pull)
            starve(sim, starve_s, pen)
            if rig.virtual:  # the host's clock is the pen's: its silence limit, exactly
                try:
                    pen.wait_for_state(State.DISCONNECTED, timeout_s=HOST_WAIT_S)
                except SmpError:
                    res.fail(f"pull {i} ({via}): no link loss reported in {HOST_WAIT_S:.0f} s")
                    continue
                took_s = sim.clock.now() - pulled_s
                detect[via].append(took_s)
                if took_s > 2 * lease_s + 0.01:  # the waiter looks within a few 2 ms steps
                    res.fail(f"pull {i} ({via}): link loss reported {took_s * 1e3:.0f} ms "
                             f"after the pull on the host's (virtual) clock (> 2 leases)")
            elif not _until(lambda p=pen: p.state is State.DISCONNECTED, sim):
                res.fail(f"pull {i} ({via}): no link loss reported in {HOST_WAIT_S:.0f} s")
                continue
            else:
                detect[via].append((rig.lost_at[0] if rig.lost_at else time.monotonic())
                                   - pulled)
            if not running[0]:
                stopped_before += 1  # the host was starved before the pull: the lease lapsed
            elif not _until(lambda s=stops: s.stop_s is not None, sim):
                res.fail(f"pull {i} ({via}): the pen kept running {HOST_WAIT_S:.0f} s")
            else:
                after_s = stops.stop_s - pulled_s
                pen_stop.append(after_s)
                if after_s > lease_s + TICK_EPS_S:  # exact: the pen's clock, whole 1 ms ticks
                    res.fail(f"pull {i} ({via}): the pen stopped the needle {after_s * 1e3:.0f}"
                             f" ms after the pull on its own clock (lease {lease_ms} ms)")
            if via != "pensim" and "silent" not in str(pen.last_fault):
                res.fail(f"pull {i} ({via}): the loss was not judged by silence: "
                         f"{pen.last_fault}")
            try:
                pen.start_needle()
                res.fail(f"pull {i} ({via}): start_needle accepted while the link is down")
            except SmpError:
                refused_while_lost += 1
            rig.sleep(rng.uniform(0.0, 0.2))
            rig.plug_back()
            pen.reconnect()
            reconnected += 1
            # watch for two leases: neither the controller nor the pen may resume the needle
            deadline_s = sim.clock.now() + 2 * lease_s
            while sim.clock.now() < deadline_s:
                sim.sync()
                if (pen.state in (State.RUNNING, State.ARMED)
                        or fw.state is FirmwareState.RUNNING):
                    resumed += 1
                    res.fail(f"pull {i} ({via}): resumed by itself "
                             f"(controller {pen.state.value}, pen {fw.state.name})")
                    break
                rig.sleep(0.005)
            if fw.executed[MsgType.NEEDLE_START] != starts_before:
                res.fail(f"pull {i} ({via}): NEEDLE_START executed after the pull")
            if pen.state is not State.FAULT or Fault.LEASE_EXPIRED not in pen.last_fault.faults:
                res.fail(f"pull {i} ({via}): after reconnect {pen.state.value} "
                         f"({pen.last_fault}); expected fault with LEASE_EXPIRED latched")
    finally:
        for rig in rigs:
            rig.close()
    wall = detect["pensim"] + detect["pty"]

    def ms(values: list[float]) -> str:
        return (f"{median(values) * 1e3:.1f} / {max(values, default=float('nan')) * 1e3:.1f}")

    res.figures = {
        "lease ms": lease_ms,
        "pen stopped after the pull, pen's clock: median / max ms": ms(pen_stop),
        "over one lease (pen's clock)": sum(1 for s in pen_stop if s > lease_s + TICK_EPS_S),
        "stopped by its lease before the pull (host starved)": stopped_before,
        "loss reported, stalled link, virtual clock: median / max ms": ms(detect["stall"]),
        "over 2 leases (virtual clock)": sum(1 for d in detect["stall"]
                                             if d > 2 * lease_s + 0.01),
        "loss reported, port error, wall: median / max ms": ms(detect["pensim"]),
        "loss reported, silent PTY, wall: median / max ms": ms(detect["pty"]),
        "reported later than 2 leases (wall clock, measured)": sum(
            1 for d in wall if d > 2 * lease_s),
        "refused while lost": refused_while_lost, "resumed by itself": resumed,
        "reconnected on request": reconnected, "setup retries": setup_retries,
    }
    if starve_s:
        res.figures["starved per pull s"] = starve_s
    res.seconds = time.perf_counter() - t0
    return res


