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

import bisect
import heapq
import itertools
import random
import threading
import time
from collections import deque

from simulators.clock import Clock, RealClock, VirtualClock
from simulators.faults import (
    DeviceFault,
    FaultPlan,
    LinkFaultConfig,
    LinkFaults,
    RandomFault,
    ScheduledFault,
    apply_device_fault,
    parse_fault_spec,
)
from simulators.firmware import PenFirmware
from simulators.gauge import Gauge
from simulators.pen_model import PenModel

POLL_S = 0.005  # real-time thread period: lease and telemetry timing to within ~5 ms
RX_LIMIT = 1 << 16  # host-side receive buffer, like an OS tty buffer: overflow drops bytes

_registry: dict[str, PenSimulator] = {}
_registry_lock = threading.Lock()
_names = itertools.count(1)


class LinkDisconnected(ConnectionError):
    """The simulated port went away (disconnect) or belongs to a link since reconnected."""


class PortInUse(ConnectionError):
    """An exclusive port (what `pensim://` opens) is already open on this simulator."""


def lookup(url_or_name: object) -> PenSimulator | None:
    """The live simulator behind `pensim://NAME`, `NAME`, or a `pensim://` serial port object."""
    sim = getattr(url_or_name, "simulator", None)
    if isinstance(sim, PenSimulator):
        return sim
    if not isinstance(url_or_name, str):
        return None
    name = url_or_name.removeprefix("pensim://").split("?", 1)[0].strip("/")
    with _registry_lock:
        return _registry.get(name) if name else None


class PenSimulator:
    """A simulated pen. Use as a context manager, or call `close()`."""

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
        self.seed = self.model.seed
        self.clock: Clock = clock if clock is not None else RealClock()
        self.virtual = bool(getattr(self.clock, "is_virtual", False))
        self.baud = baud
        self._byte_s = 10.0 / baud if baud else 0.0
        plan = link_faults if isinstance(link_faults, FaultPlan) else None
        if isinstance(link_faults, str):
            plan = parse_fault_spec(link_faults)
        config = link_faults if isinstance(link_faults, LinkFaultConfig) else None
        if plan is not None:
            config = plan.link
        self.link = LinkFaults(config, seed=self.seed)

        self._cond = threading.Condition(threading.RLock())
        self.firmware = PenFirmware(self.model, self.clock)
        md = self.model
        self.gauge = Gauge(self._true_depth_mm, md.gauge_noise_mm, md.gauge_nonlinearity_mm,
                           md.seed)
        self._start_s = self.clock.now()
        self._in: deque[tuple[float, bytes]] = deque()  # host -> pen, by arrival time
        self._out: deque[tuple[float, bytes]] = deque()  # pen -> host, by delivery time
        self._rx: deque[bytes] = deque()  # delivered, waiting for the host to read
        self._rx_bytes = 0
        self._in_free_s = self._out_free_s = 0.0
        self._events: list[tuple[float, int, str, object]] = []
        self._event_ids = itertools.count()
        self._rng_faults = random.Random(f"{self.seed}:device-faults")
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
            self.name = name or f"pen{next(_names)}"
            if self.name in _registry:
                raise ValueError(f"a simulator named {self.name!r} is already running")
            _registry[self.name] = self
        self._thread: threading.Thread | None = None
        if self.virtual:
            self.clock.on_advance(self._on_clock)  # type: ignore[attr-defined]
        else:
            self._thread = threading.Thread(target=self._run, name=f"pensim-{self.name}",
                                            daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ identity, lifetime
    @property
    def url(self) -> str:
        return f"pensim://{self.name}"

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
            if self.closed:
                return
            self._run_until(now_s)
            self._cond.notify_all()  # a reader may be waiting for a delivery time to come

    def _run(self) -> None:
        with self._cond:
            while not self.closed:
                self._run_until(self.clock.now())
                self._cond.wait(POLL_S)

    def sync(self) -> None:
        """Bring the pen up to the clock's now (done before any read of its state)."""
        with self._cond:
            if not self.closed:
                self._run_until(self.clock.now())

    def _run_until(self, t_s: float) -> None:
        """Run firmware ticks, arrivals and scheduled faults in time order up to t_s."""
        fw = self.firmware
        while True:
            t_in = self._in[0][0] if self._in else None
            t_ev = self._events[0][0] if self._events else None
            nxt = min((t for t in (t_in, t_ev) if t is not None), default=None)
            if nxt is None or nxt > t_s + 1e-9:  # float sums of clock steps: within 1 ns is due
                break
            fw.advance_to(nxt)
            self._collect()
            if t_in is not None and t_in == nxt:
                _, data = self._in.popleft()
                fw.receive_now(data)
            else:
                _, _, action, arg = heapq.heappop(self._events)
                self._fire(action, arg)
        fw.advance_to(t_s)
        self._collect()

    def _collect(self) -> None:
        frames = self.firmware.take_timed_frames()
        if not frames:
            return
        if not (self.connected and self.open_ports):
            return  # nobody has the port open: the bytes go nowhere
        for t_s, frame in frames:
            for delay_s, chunk in self.link.outbound(frame, t_s):
                if not chunk:
                    continue
                start = max(t_s + delay_s, self._out_free_s)
                if self._byte_s:
                    start += len(chunk) * self._byte_s
                    self._out_free_s = start
                self._out.append((start, chunk))
        self._cond.notify_all()

    # ------------------------------------------------------------------ faults
    def inject(self, fault: DeviceFault | str, on: bool = True) -> None:
        """Make a device fault's cause present now (`on=False` removes it)."""
        with self._cond:
            self._run_until(self.clock.now())
            apply_device_fault(self.firmware, DeviceFault(fault), on)
            self._collect()

    def clear(self, fault: DeviceFault | str) -> None:
        """Remove a device fault's cause (the pen still needs CLEAR_FAULTS)."""
        self.inject(fault, on=False)

    def schedule(self, item: ScheduledFault) -> None:
        """Run `item.action` at `item.at_s` s after start (and undo it at `item.until_s`)."""
        with self._cond:
            self._push(self._start_s + item.at_s, item.action, True)
            if item.until_s is not None:
                self._push(self._start_s + item.until_s, item.action, False)
            self._cond.notify_all()

    def _push(self, t_s: float, action: str, arg: object) -> None:
        heapq.heappush(self._events, (t_s, next(self._event_ids), action, arg))

    def _schedule_random(self, rnd: RandomFault, after_s: float | None = None) -> None:
        if rnd.rate_per_s <= 0:
            return
        base = self.clock.now() if after_s is None else after_s
        t_s = base + self._rng_faults.expovariate(rnd.rate_per_s)
        self._push(t_s, rnd.fault.value, True)
        if rnd.fault is not DeviceFault.BROWNOUT:
            self._push(t_s + rnd.hold_s, rnd.fault.value, False)
        self._push(t_s, "_random", rnd)

    def _fire(self, action: str, arg: object) -> None:
        now_s = self.firmware.time_s()
        if action == "_random":
            self._schedule_random(arg, after_s=now_s)  # type: ignore[arg-type]
        elif action == "stall":
            if arg:
                self.link.stall(now_s)
            else:
                self.link.unstall()
        elif action == "disconnect":
            self._disconnect()
            if arg is False:
                self._reconnect()
        elif action == "reconnect":
            self._reconnect()
        else:
            apply_device_fault(self.firmware, DeviceFault(action), bool(arg))
        self._collect()

    # ------------------------------------------------------------------ link control
    def disconnect(self) -> None:
        """The port disappears: open ports raise, bytes in flight are lost. The pen runs on."""
        with self._cond:
            self._run_until(self.clock.now())
            self._disconnect()

    def reconnect(self) -> None:
        """The port is back; open it again (ports opened before the disconnect stay dead)."""
        with self._cond:
            self._run_until(self.clock.now())
            self._reconnect()

    def _disconnect(self) -> None:
        self.connected = False
        self._in.clear()
        self._out.clear()
        self._rx.clear()
        self._rx_bytes = 0
        self._cond.notify_all()

    def _reconnect(self) -> None:
        if self.connected:
            return
        self.connected = True
        self.generation += 1
        self.firmware.decoder.reset()  # a half frame from the old link is garbage now
        self._cond.notify_all()

    def open_port(self, exclusive: bool = False) -> HostPort:
        """The host's end of the link (pyserial's pensim:// handler wraps an exclusive one).

        Like a serial device, at most one exclusive port is open at a time: a second raises
        PortInUse until the first closes (or dies with a disconnect). Non-exclusive ports are
        the test's back door (QA taps, bridges) and never conflict.
        """
        with self._cond:
            if self.closed:
                raise LinkDisconnected(f"simulator {self.name} is closed")
            if not self.connected:
                raise LinkDisconnected(f"simulator {self.name} is disconnected")
            owner = self._owner
            if exclusive and owner is not None and owner.is_open \
                    and owner.generation == self.generation:
                raise PortInUse(
                    f"{self.url} is in use: another program or port has it open; close that "
                    f"port first (a serial port has one owner at a time)"
                )
            port = HostPort(self)
            if exclusive:
                self._owner = port
            return port

    # ------------------------------------------------------------------ host side I/O
    def _host_write(self, port: HostPort, data: bytes) -> None:
        with self._cond:
            port.check()
            now_s = self.clock.now()
            self._run_until(now_s)
            chunks = self.link.inbound_frames(bytes(data), now_s)
            if not chunks:
                return
            for delay_s, data in chunks:
                arrive_s = now_s
                if self._byte_s:
                    arrive_s = max(now_s, self._in_free_s) + len(data) * self._byte_s
                    self._in_free_s = arrive_s
                # by arrival time: a delayed frame is overtaken by later ones
                bisect.insort(self._in, (arrive_s + delay_s, data), key=lambda x: x[0])
            self._run_until(now_s)
            self._cond.notify_all()  # the real-time thread must wake for a paced arrival

    def _promote(self) -> None:
        """Move chunks whose delivery time has come into the host's receive buffer."""
        now_s = self.clock.now() + 1e-6  # the firmware rounds clock time to whole ms the same way
        while self._out and self._out[0][0] <= now_s:
            chunk = self._out.popleft()[1]
            if self._rx_bytes + len(chunk) > RX_LIMIT:
                self.link.stats["rx_overflow_bytes"] += len(chunk)
                continue
            self._rx.append(chunk)
            self._rx_bytes += len(chunk)

    def _wait(self, deadline: float | None) -> bool:
        """Wait for news (wall time); False when the deadline has passed."""
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return False
        if self._out and not self.virtual:
            until = self._out[0][0] - self.clock.now()
            timeout = until if timeout is None else min(timeout, until)
        self._cond.wait(None if timeout is None else max(timeout, 0.0005))
        return True

    def _host_read(self, port: HostPort, size: int, timeout_s: float | None) -> bytes:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        out = bytearray()
        with self._cond:
            while True:
                port.check()
                if not self.virtual:
                    self._run_until(self.clock.now())
                self._promote()
                while self._rx and len(out) < size:
                    chunk = self._rx.popleft()
                    take = size - len(out)
                    out += chunk[:take]
                    if len(chunk) > take:
                        self._rx.appendleft(chunk[take:])
                    self._rx_bytes -= min(take, len(chunk))
                if len(out) >= size or not self._wait(deadline):
                    return bytes(out)

    def _host_read_chunk(self, port: HostPort, timeout_s: float | None) -> bytes:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                port.check()
                self._promote()
                if self._rx:
                    chunk = self._rx.popleft()
                    self._rx_bytes -= len(chunk)
                    return chunk
                if not self._wait(deadline):
                    return b""

    def _host_in_waiting(self, port: HostPort) -> int:
        with self._cond:
            port.check()
            if not self.virtual:
                self._run_until(self.clock.now())
            self._promote()
            return self._rx_bytes

    def _host_reset_input(self, port: HostPort) -> None:
        with self._cond:
            port.check()
            self._promote()
            self._rx.clear()
            self._rx_bytes = 0

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


class HostPort:
    """The host's end of one connection to a simulator. Dead after a disconnect."""

    def __init__(self, sim: PenSimulator) -> None:
        self.sim = sim
        self.generation = sim.generation
        self.is_open = True
        sim.open_ports += 1

    def check(self) -> None:
        sim = self.sim
        if not self.is_open:
            raise LinkDisconnected("port is closed")
        if sim.closed:
            raise LinkDisconnected(f"simulator {sim.name} was closed")
        if not sim.connected or sim.generation != self.generation:
            raise LinkDisconnected(f"simulator {sim.name} disconnected; reopen the port")

    def write(self, data: bytes) -> int:
        self.sim._host_write(self, data)
        return len(data)

    def read(self, size: int = 1, timeout_s: float | None = None) -> bytes:
        """Up to `size` bytes; blocks until `size` or the (wall-time) timeout; None = forever."""
        return self.sim._host_read(self, size, timeout_s)

    def read_chunk(self, timeout_s: float | None = None) -> bytes:
        """The next chunk as the pen wrote it (one frame unless split), or b"" on timeout."""
        return self.sim._host_read_chunk(self, timeout_s)

    @property
    def in_waiting(self) -> int:
        return self.sim._host_in_waiting(self)

    def reset_input_buffer(self) -> None:
        self.sim._host_reset_input(self)

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            with self.sim._cond:
                self.sim.open_ports -= 1
                if self.sim._owner is self:
                    self.sim._owner = None
                self.sim._cond.notify_all()


__all__ = ["HostPort", "LinkDisconnected", "PenSimulator", "PortInUse", "VirtualClock",
           "lookup"]
