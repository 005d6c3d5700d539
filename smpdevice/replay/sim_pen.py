"""The simulated pen `smp replay --into-sim` talks to: built as the recorded one, on a virtual
clock, with its port, what it said, and its clock brought to a recorded pen time.

One `SimulatedPen` may serve several parts of a resumed session (`smpdevice.replay.into_sim`):
it keeps its state (faults, calibration table, temperature, counters, its clock) from one part
to the next, as the real pen did when it stayed switched on.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from typing import Any

from firmware_protocol import Frame, MsgType, StreamDecoder, encode
from smpdevice.records.frames import RecordingError

BOOT_S = 0.06  # the simulated pen boots in this much virtual time
CHUNK_S = 0.5  # read the simulator's output at least this often (its buffer is 64 KiB)
# Pen time the simulator idles to reach a recorded pen's clock (~5 ms of CPU a second: 10 min
# is ~3 s). Past it the rest is skipped (said in a note): an idle pen has cooled by then (20
# thermal time constants of 30 s), its lease lapsed; only a fault scheduled later moves.
MAX_IDLE_S = 600.0


def recorded_simulator_options(port_url: Any) -> dict[str, str]:
    """The options of the `pensim://?...` port the session ran on (faults, lease, telemetry);
    empty for a real pen or a named simulator (its options are not in its URL)."""
    if not isinstance(port_url, str) or not port_url.startswith("pensim://"):
        return {}
    from simulators.urls import query_options  # as a port reads it: `+` kept

    # the last of a repeated option: what ports took before they refused repeats (older
    # recordings; a recorded port with a repeat never opens now)
    options = {k: v[-1] for k, v in query_options(urllib.parse.urlsplit(port_url).query).items()}
    for name in ("seed", "lease", "telemetry"):  # a port with text there never opened
        if name in options and not re.fullmatch(r"-?[0-9]+", options[name]):
            raise RecordingError(f"the recorded port {port_url!r} gives {name}="
                                 f"{options[name]!r}, no whole number: no pen ran on it (the "
                                 "recording's metadata was altered)")
    return {k: options[k] for k in ("faults", "lease", "telemetry") if k in options}


def build_simulator(seed: int, options: dict[str, str], faults: str | None, clock: Any) -> Any:
    """The simulated pen a replay talks to: the recorded model options and fault spec, or
    `faults` (from `smp replay --faults`) instead of the recorded spec."""
    from simulators import PenSimulator
    from simulators.faults import parse_fault_spec
    from simulators.pen_model import PenModel

    spec = faults if faults is not None else options.get("faults")
    which = "--faults" if faults is not None else "the recorded port's faults"
    try:
        plan = parse_fault_spec(spec)
    except ValueError as exc:
        raise RecordingError(f"{which} = {spec!r} is not a fault spec ({exc}); see "
                             "docs/simulator.md for the syntax, e.g. --faults jam@1.5") from None
    plan.link = without_byte_link_faults(plan.link)
    if "lease" not in options and "telemetry" not in options:
        return PenSimulator(seed=seed, clock=clock, link_faults=plan)
    model = PenModel(seed=seed)  # the recorded port's model options
    try:
        if "lease" in options:
            model.lease_max_ms = int(options["lease"])
        if "telemetry" in options:
            model.telemetry_default_hz = int(options["telemetry"])
        return PenSimulator(model=model, clock=clock, link_faults=plan)  # checks their ranges
    except ValueError as exc:
        raise RecordingError(f"the recorded port's options are invalid ({exc})") from None


def without_byte_link_faults(link: Any) -> Any:
    """`link` (a LinkFaultConfig) without the faults on the bytes of the link: the pen->host
    ones (delay, split, dup, junk) and the byte faults of both ways (drop, flip). Their effect
    on what the pen said is in the recorded bytes already; replayed, a delayed or split reply
    comes after `exchange` looked for it, and random draws fall on other bytes than in the
    recording (docs/simulator.md, step 3). The host->pen type faults (drop_type, delay_type)
    stay: they act on the recorded commands, deterministically, as they did on the pen's."""
    return dataclasses.replace(link, drop_p=0.0, flip_p=0.0, junk_p=0.0, dup_p=0.0,
                               split_p=0.0, delay_s=0.0)


class SimulatedPen:
    """A booted simulator on its own virtual clock, with a host port open on it."""

    def __init__(self, seed: int, options: dict[str, str], faults: str | None) -> None:
        from simulators.clock import VirtualClock

        self.seed, self.options = seed, options
        self.clock = VirtualClock()
        self.sim = build_simulator(seed, options, faults, self.clock)
        self.port: Any = self.sim.open_port()
        self.decoder = StreamDecoder()
        self.replies: dict[int, Frame] = {}  # seq -> the latest reply read with it
        self.events: list[tuple[float, Any]] = []  # (s since `collect_events`, Event)
        self._collect_from: float | None = None
        self.sim.advance(BOOT_S)
        self.take()

    @property
    def uptime_ms(self) -> int:
        return int(self.sim.firmware.uptime_ms)

    def firmware_state(self) -> tuple[Any, Any]:
        """(FirmwareState, Fault) now."""
        self.sim.sync()
        return self.sim.firmware.state, self.sim.firmware.faults

    def take(self) -> list[Frame]:
        """Decode what the simulator sent; its EVENTs are kept while collecting."""
        port = self.port
        if port is None:  # unplugged: what it sends meanwhile is lost with the cable
            return []
        out = self.decoder.feed(port.read(port.in_waiting, 0) if port.in_waiting else b"")
        self.replies.update((f.seq, f) for f in out if f.seq)  # late ones too (delay_type)
        if self._collect_from is not None:
            self.events.extend((self.clock.now() - self._collect_from, f.message) for f in out
                               if f.seq == 0 and f.message.TYPE == MsgType.EVENT)
        return out

    def collect_events(self, on: bool) -> None:
        self.events, self._collect_from = ([], self.clock.now()) if on else (self.events, None)

    def advance_to(self, due_s: float) -> None:
        """Run the clock to `due_s`, reading in steps (the port's buffer is finite, like a
        tty's)."""
        while self.clock.now() < due_s:
            self.sim.advance(min(CHUNK_S, due_s - self.clock.now()))
            self.take()

    def idle_until_uptime(self, uptime_ms: float) -> float:
        """Let the pen run (idle, or as it is) until its clock reads `uptime_ms`; returns the
        seconds skipped past MAX_IDLE_S (0.0 when none)."""
        lag_s = (uptime_ms - self.uptime_ms) / 1000.0
        if lag_s <= 0:
            return 0.0
        self.advance_to(self.clock.now() + min(lag_s, MAX_IDLE_S))
        return max(0.0, lag_s - MAX_IDLE_S)

    def exchange(self, frame: Frame) -> Frame | None:
        """Write a host frame as recorded (its sequence number too); the simulator's reply."""
        self.replies.pop(frame.seq, None)
        if self.port is None:  # written to a port the cable had left: nothing reaches it
            return None
        self.port.write(encode(frame.message, frame.seq))
        replies = [f for f in self.take() if f.seq == frame.seq]
        return replies[0] if replies else None

    def reconnect(self) -> None:
        """A new host connection: the old port closed, a new one opened (what it had not
        read is lost with it, as on a tty)."""
        self.unplug()
        self.port = self.sim.open_port()
        self.decoder = StreamDecoder()

    def unplug(self) -> None:
        """The recorded link was lost (its cable pulled): the port is closed until the
        recorded reconnect; what the pen sends meanwhile is not read (it was lost live)."""
        if self.port is not None:
            self.port.close()
        self.port = None

    def close(self) -> None:
        self.unplug()
        self.sim.close()
