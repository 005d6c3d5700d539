"""`PenSimulator`: a simulated pen with its link, gauge, fault injection and a registry by name.

The firmware is pure; this class gives it time and a wire:
- virtual clock: nothing moves until the clock advances (`sim.advance(dt_s)`, or anyone calling
  `clock.advance` on the shared `VirtualClock`); a write is executed at once.
- real time (`clock=None`): a daemon thread wakes every few ms and runs the firmware up to now;
  a write is executed at once in the writer's thread, so replies come without waiting a poll.

Bytes travel through `LinkFaults` and, with `baud`, are paced like a UART (10 bits per byte).
The host side is a `HostPort` from `open_port()`; pyserial's `pensim://` handler wraps one.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
from collections import deque
from collections.abc import Hashable

from simulators.causes import BY_HAND, Causes
from simulators.clock import Clock, RealClock, VirtualClock
from simulators.faults import (
    DeviceFault,
    FaultPlan,
    FaultSpecError,
    LinkFaultConfig,
    LinkFaults,
    RandomFault,
    ScheduledFault,
    apply_device_fault,
    known_action,
    parse_fault_spec,
)
from simulators.firmware import PenFirmware
from simulators.gauge import Gauge
from simulators.host_link import HostLink, HostPort, LinkDisconnected, PortInUse
from simulators.pen_model import PenModel, check_configurable
from simulators.rx_buffer import TELEMETRY as _TELEMETRY
from simulators.rx_buffer import TYPE_AT as _TYPE_AT
from simulators.urls import sim_name, url_name

POLL_S = 0.005  # real-time thread period: lease and telemetry timing to within ~5 ms
ERRORS_KEPT = 100  # sim.errors keeps the last ones

_log = logging.getLogger(__name__)

_registry: dict[str, PenSimulator] = {}
_registry_lock = threading.Lock()
_names = itertools.count(1)


def lookup(url_or_name: object) -> PenSimulator | None:
    """The live simulator behind `pensim://NAME` (or `?name=NAME`), `NAME`, or a port object."""
    sim = getattr(url_or_name, "simulator", None)
    if isinstance(sim, PenSimulator):
        return sim
    if not isinstance(url_or_name, str):
        return None
    name = url_name(url_or_name) if url_or_name.startswith("pensim:") else url_or_name
    with _registry_lock:
        return _registry.get(name) if name else None


class PenSimulator(HostLink):
    """A simulated pen. Use as a context manager, or call `close()`.

    Here: the firmware, time, faults, the pedal and the gauge; ports and the bytes both ways
    are in `HostLink` (simulators/host_link.py)."""

    def __init__(
        self,
        seed: int = 0,
        model: PenModel | None = None,
        clock: Clock | None = None,
        link_faults: LinkFaultConfig | FaultPlan | str | None = None,
        baud: int | None = None,
        name: str | None = None,
        schedule: list[ScheduledFault] | None = None,
    ) -> None:
        self.model = model if model is not None else PenModel(seed=seed)
        check_configurable(self.model, baud)  # a bad value must fail here, not in every reply
        self.seed = self.model.seed
        self.clock: Clock = clock if clock is not None else RealClock()
        self.virtual = bool(getattr(self.clock, "is_virtual", False))
        self.baud = baud
        self._byte_s = 10.0 / baud if baud else 0.0
        if not isinstance(link_faults, LinkFaultConfig | FaultPlan | str | None):
            raise FaultSpecError(f"link_faults={link_faults!r} is refused: give a fault spec "
                                 "(e.g. 'drop=0.01,jam@2'), a LinkFaultConfig or a FaultPlan")
        if schedule is not None and not isinstance(schedule, list | tuple):
            raise FaultSpecError(f"schedule={schedule!r} is refused: give a list of "
                                 "ScheduledFault")
        plan = link_faults if isinstance(link_faults, FaultPlan) else None
        if isinstance(link_faults, str):
            plan = parse_fault_spec(link_faults)
        config = link_faults if isinstance(link_faults, LinkFaultConfig) else None
        if plan is not None:
            config = plan.link
        self.link = LinkFaults(config, seed=self.seed)

        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # host readers, and anyone waiting for news
        self._tick_cond = threading.Condition(lock)  # the real-time thread alone: see _run
        self._exchanging = False  # a HostPort.exchange takes the replies: no reader to wake
        self.firmware = PenFirmware(self.model, self.clock)
        md = self.model
        self.gauge = Gauge(self._true_depth_mm, md.gauge_noise_mm, md.gauge_nonlinearity_mm,
                           md.seed)
        self._start_s = self.clock.now()
        self._in: deque[tuple[float, bytes]] = deque()  # host -> pen, by arrival time
        self._out: deque[tuple[float, bytes]] = deque()  # pen -> host, by delivery time
        self._ports: list[HostPort] = []  # open ports of this connection, each its own queue
        self._in_free_s = self._out_free_s = 0.0
        # with `baud`: when the pen's UART has sent all it queued (a TELEMETRY due earlier: skipped)
        self._tx_free_s = 0.0
        self.telemetry_skipped = 0
        self._events: list[tuple[float, int, str, object]] = []
        self._event_ids = itertools.count()
        self._rng_faults = random.Random(f"{self.seed}:device-faults")
        self._causes = Causes()  # each fault window holds its own cause (R01)
        # errors of scheduled actions and real-time ticks, newest last: logged, never fatal (R02)
        self.errors: deque[str] = deque(maxlen=ERRORS_KEPT)
        self.connected = True
        self.generation = 0
        self.open_ports = 0
        self._owner: HostPort | None = None  # the exclusive port (pensim://), like a tty's fd
        self.closed = False
        for item in [*(plan.schedule if plan else []), *(schedule or [])]:
            self.schedule(item)
        for rnd in plan.random if plan else []:
            self._schedule_random(rnd)

        with _registry_lock:
            self.name = sim_name(name) or next(auto for auto in (f"pen{n}" for n in _names)
                                     if auto not in _registry)  # one a user named is taken
            if self.name in _registry:
                raise ValueError(f"a simulator named {self.name!r} is already running")
            _registry[self.name] = self
        self._thread: threading.Thread | None = None
        if self.virtual:
            self.clock.on_advance(self._on_clock,  # type: ignore[attr-defined]
                                  until_s=self.firmware.max_time_s)
        else:
            self._thread = threading.Thread(target=self._run, name=f"pensim-{self.name}",
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ identity, lifetime
    @property
    def serial(self) -> str:
        return self.model.serial

    def __enter__(self) -> PenSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "virtual" if self.virtual else "real-time"
        return f"<PenSimulator {self.url} serial={self.serial} {mode}>"

    def close(self) -> None:
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self.connected = False
            self._cond.notify_all()
            self._tick_cond.notify_all()
        with _registry_lock:
            if _registry.get(self.name) is self:
                del _registry[self.name]
        if self.virtual:
            self.clock.remove_listener(self._on_clock)  # type: ignore[attr-defined]
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    # ------------------------------------------------------------------ time
    def advance(self, dt_s: float) -> None:
        """Advance the virtual clock (and so the pen) by dt_s seconds."""
        if not self.virtual:
            raise RuntimeError("advance() needs a VirtualClock; this simulator runs in real time")
        self.clock.advance(dt_s)  # type: ignore[attr-defined]  # runs _on_clock

    def _on_clock(self, now_s: float) -> None:
        with self._cond:
            if not self.closed:
                self._run_until(now_s)
                if self._readers:  # a reader may be waiting for a delivery time to come
                    self._cond.notify_all()

    def _run(self) -> None:
        """The real-time thread: ticks every POLL_S, and at a paced arrival's time. It has a
        condition of its own, so a command or a reply does not wake it for nothing."""
        with self._cond:
            while not self.closed:
                now_s = self.clock.now()
                try:
                    self._run_until(now_s)
                except Exception as exc:  # the pen must go on ticking
                    self._error("real-time tick", exc)
                wait_s = POLL_S
                if self._in:
                    wait_s = min(wait_s, max(self._in[0][0] - now_s, 0.0))
                self._tick_cond.wait(wait_s)

    def sync(self) -> None:
        """Bring the pen up to the clock's now (done before any read of its state)."""
        with self._cond:
            if not self.closed:
                self._run_until(self.clock.now())

    def _run_until(self, t_s: float) -> None:
        """Run firmware ticks, arrivals and scheduled faults in time order up to t_s."""
        fw, arrivals, events = self.firmware, self._in, self._events
        due_s = t_s + 1e-9  # float sums of clock steps: within 1 ns is due
        if self.link.stall_began_s is not None:  # a stall by hand since the last run
            self._lose_in_flight()
        while arrivals or events:
            t_in = arrivals[0][0] if arrivals else None
            t_ev = events[0][0] if events else None
            nxt = t_ev if t_in is None or (t_ev is not None and t_ev < t_in) else t_in
            if nxt > due_s:  # type: ignore[operator]  # one of the two is set
                break
            fw.advance_to(nxt)  # type: ignore[arg-type]
            self._collect()
            if t_in is not None and t_in == nxt:
                fw.receive_now(arrivals.popleft()[1])
            else:
                _, _, action, arg = heapq.heappop(events)
                self._fire(action, arg)
        fw.advance_to(t_s)
        self._collect()

    def _arrive_now(self, data: bytes) -> None:
        """Host bytes that arrive at once (no pacing, no delay, nothing queued before them),
        after `_run_until(now)`: what `_run_until` would do with them, without the queue."""
        self.firmware.receive_now(data)
        self._collect()

    def _collect(self) -> None:
        if not self.firmware.has_output:
            return
        frames = self.firmware.take_timed_frames()
        if not (self.connected and self.open_ports):
            return  # nobody has the port open: the bytes go nowhere
        for t_s, frame in frames:
            if self._byte_s:  # a paced UART: TELEMETRY gives way (protocol.md section 12)
                if frame[_TYPE_AT] == _TELEMETRY and self._tx_free_s > t_s + 1e-9:
                    self.telemetry_skipped += 1  # its telemetry_seq is spent: a gap shows
                    continue
                self._tx_free_s = max(t_s, self._tx_free_s) + len(frame) * self._byte_s
            for delay_s, chunk in self.link.outbound(frame, t_s):
                if not chunk:
                    continue
                start = max(t_s + delay_s, self._out_free_s)
                if self._byte_s:
                    start += len(chunk) * self._byte_s
                    self._out_free_s = start
                self._out.append((start, chunk))
        if self._readers and not self._exchanging:
            self._cond.notify_all()  # a reader may be waiting for output

    # ------------------------------------------------------------------ footswitch
    def press_pedal(self) -> None:
        """The technician presses the footswitch (it starts nothing by itself)."""
        self.inject(DeviceFault.PEDAL_UP, on=False)

    def release_pedal(self) -> None:
        """The technician lifts the foot: in footswitch mode REQUIRED the pen stops the needle
        in its next tick (1 ms)."""
        self.inject(DeviceFault.PEDAL_UP, on=True)

    @property
    def pedal_down(self) -> bool:
        """Whether the footswitch is pressed now (False on a pen without one)."""
        with self._cond:
            return self.firmware.pedal_down()

    # ------------------------------------------------------------------ faults
    def inject(self, fault: DeviceFault | str, on: bool = True) -> None:
        """Make a device fault's cause present now (`on=False` removes it, and with it every
        cause a scheduled or random item holds; their ends then change nothing)."""
        fault = DeviceFault(known_action(fault, "fault", link_events=False))
        with self._cond:
            self._run_until(self.clock.now())
            self._device(fault, bool(on), BY_HAND)
            self._collect()

    def clear(self, fault: DeviceFault | str) -> None:
        """Remove a device fault's cause (the pen still needs CLEAR_FAULTS)."""
        self.inject(fault, on=False)

    def schedule(self, item: ScheduledFault) -> None:
        """Run `item.action` at `item.at_s` s after start (and undo it at `item.until_s`).
        The item is checked again here (a dataclass can be changed after it was made): a bad
        one raises FaultSpecError now, never when it would fire."""
        if not isinstance(item, ScheduledFault):
            raise FaultSpecError(f"schedule() takes a ScheduledFault (e.g. ScheduledFault(2.0, "
                                 f"'jam')), not {type(item).__name__}")
        item = ScheduledFault(item.at_s, item.action, item.until_s)
        cause = ("scheduled", next(self._event_ids))  # this item's own cause
        with self._cond:
            self._push(self._start_s + item.at_s, item.action, (True, cause))
            if item.until_s is not None:
                self._push(self._start_s + item.until_s, item.action, (False, cause))
            self._cond.notify_all()

    def _push(self, t_s: float, action: str, arg: object) -> None:
        heapq.heappush(self._events, (t_s, next(self._event_ids), action, arg))

    def _schedule_random(self, rnd: RandomFault, after_s: float | None = None) -> None:
        if rnd.rate_per_s <= 0:
            return
        base = self.clock.now() if after_s is None else after_s
        t_s = base + self._rng_faults.expovariate(rnd.rate_per_s)
        cause = ("random", next(self._event_ids))  # this occurrence's own cause
        self._push(t_s, rnd.fault.value, (True, cause))
        if rnd.fault is not DeviceFault.BROWNOUT:
            self._push(t_s + rnd.hold_s, rnd.fault.value, (False, cause))
        self._push(t_s, "_random", rnd)

    def _fire(self, action: str, arg: object) -> None:
        try:
            self._fire_action(action, arg)
        except Exception as exc:  # never the death of the tick thread
            self._error(f"scheduled {action!r}", exc)
        self._collect()

    def _fire_action(self, action: str, arg: object) -> None:
        now_s = self.firmware.time_s()
        if action == "_random":
            self._schedule_random(arg, after_s=now_s)  # type: ignore[arg-type]
            return
        on, cause = arg  # type: ignore[misc]
        if action == "stall":
            if on:
                self.link.stall(now_s, cause=cause)
                self._lose_in_flight()
            else:
                self.link.unstall(cause)
        elif action == "disconnect":
            if on:
                self._causes.hold("disconnect", cause)
                self._disconnect()
            elif self._causes.release("disconnect", cause):
                self._reconnect()
        elif action == "reconnect":
            if on:  # an explicit reconnect ends every disconnect under way
                self._causes.release("disconnect", BY_HAND)
                self._reconnect()
        else:
            self._device(DeviceFault(action), on, cause)

    def _device(self, fault: DeviceFault, on: bool, cause: Hashable) -> None:
        """A cause of `fault` appears (`on`) or goes; the fault's cause goes with the last."""
        if fault is DeviceFault.BROWNOUT:  # an instant: nothing is held
            if on:
                apply_device_fault(self.firmware, fault, True)
        elif on:
            self._causes.hold(fault, cause)
            apply_device_fault(self.firmware, fault, True)
        elif self._causes.release(fault, cause):
            apply_device_fault(self.firmware, fault, False)

    def _error(self, where: str, exc: Exception) -> None:
        text = f"{where}: {type(exc).__name__}: {exc}"
        if text not in self.errors:  # once, not every 5 ms
            _log.error("simulator %s: %s", self.name, text, exc_info=exc)
        self.errors.append(text)

    # ------------------------------------------------------------------ gauge
    def _true_depth_mm(self) -> float:
        with self._cond:
            if not self.closed:
                self._run_until(self.clock.now())
            return self.firmware.physics.true_depth_mm()

    def skin_depth_mm(self) -> float | None:
        """Depth the needle reaches in skin in the impression now under way (None when the
        needle is not running): the protrusion plus this impression's skin contact (hand
        pressure, skin give). The pen cannot measure it; QA can."""
        with self._cond:
            if not self.closed:
                self._run_until(self.clock.now())
            fw = self.firmware
            if fw.state.name != "RUNNING":
                return None
            return fw.physics.skin_depth_mm(fw.impressions)


__all__ = ["HostPort", "LinkDisconnected", "PenSimulator", "PortInUse", "VirtualClock",
           "lookup"]
