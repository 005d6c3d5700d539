"""Faults QA can inject: on the link (bytes between host and pen) and in the device.

Three ways to cause each one, all repeatable from a seed (every random draw comes from
`random.Random` seeded from the simulator's seed):
- on demand: `sim.inject(DeviceFault.JAM)`, `sim.link.drop_next_frames(2)`, `sim.disconnect()`;
- on a schedule: `ScheduledFault(at_s=2.0, action="jam")`, or `"jam@2.0-3.5"` in a fault spec;
- with a probability: `LinkFaultConfig(drop_p=0.01)` per byte, or `"jam~0.05"` (per second).

Fault spec (the `faults=` option of `pensim://` and `smp sim --faults`), items joined by commas:
    drop=P flip=P        per byte, both directions (bytes lost / one bit flipped)
    junk=P dup=P split=P per pen->host frame (junk burst before it / sent twice / in two writes)
    delay=S              extra latency of every pen->host frame, seconds
    drop_type=T[+T2..]   every host->pen frame of message type T (e.g. ESTOP) is lost;
                         `*` = every host->pen frame (pen->host traffic still flows)
    delay_type=T[+T2..]:S  host->pen frames of type T arrive S seconds late (overtaken by
                         later frames); `*:S` delays every host->pen frame
    NAME@T               at T s after start: a device fault (jam, overcurrent, overtemperature,
                         encoder_loss, depth_drift, cartridge_removed, brownout, pedal_up) or a
                         link event (stall, disconnect, reconnect)
    NAME@T1-T2           on at T1, off (cause removed / link back / pedal pressed) at T2
    NAME~R               a device fault at random, R times per second on average; its cause
                         goes away again after 0.5 s
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_protocol.codes import MsgType
from firmware_protocol.frame import OVERHEAD, SYNC
from firmware_protocol.messages import HOST_TO_PEN
from simulators.firmware import PenFirmware


class DeviceFault(StrEnum):
    """Device faults and what each does to the simulated pen."""

    JAM = "jam"  # the cam stalls: speed collapses, stall current -> JAM
    OVERCURRENT = "overcurrent"  # winding short: current above the trip when driven
    OVERTEMPERATURE = "overtemperature"  # cooling failure: body above the trip, cools slowly
    ENCODER_LOSS = "encoder_loss"  # encoder edges stop while the motor turns
    DEPTH_DRIFT = "depth_drift"  # actuator slips away from its command -> DEPTH_OUT_OF_BAND
    CARTRIDGE_REMOVED = "cartridge_removed"  # cartridge pulled out
    BROWNOUT = "brownout"  # supply dip: firmware reboots, POWER_RESET latched
    PEDAL_UP = "pedal_up"  # the technician lifts the foot off the footswitch (off: presses it)


LINK_EVENTS = ("stall", "disconnect", "reconnect")


def apply_device_fault(firmware: PenFirmware, fault: DeviceFault, on: bool = True) -> None:
    """Make the cause of `fault` present (`on`) or remove it. The firmware detects it itself."""
    phys = firmware.physics
    cond = phys.cond
    if fault is DeviceFault.JAM:
        cond.jammed = on
    elif fault is DeviceFault.OVERCURRENT:
        cond.winding_short = on
    elif fault is DeviceFault.OVERTEMPERATURE:
        phys.set_overheating(on)
    elif fault is DeviceFault.ENCODER_LOSS:
        cond.encoder_lost = on
    elif fault is DeviceFault.DEPTH_DRIFT:
        phys.set_drifting(on)
    elif fault is DeviceFault.CARTRIDGE_REMOVED:
        cond.cartridge_present = not on
    elif fault is DeviceFault.PEDAL_UP:
        cond.pedal_down = not on
    elif fault is DeviceFault.BROWNOUT:
        if on:
            firmware.power_reset()
    else:  # pragma: no cover - exhaustive
        raise ValueError(f"unknown device fault {fault!r}")


@dataclass
class LinkFaultConfig:
    """Probabilistic link faults. Byte faults act both ways, frame faults on pen->host frames."""

    drop_p: float = 0.0  # per byte: the byte is lost
    flip_p: float = 0.0  # per byte: one bit flipped
    junk_p: float = 0.0  # per frame: 1..16 random bytes written before it
    dup_p: float = 0.0  # per frame: written twice
    split_p: float = 0.0  # per frame: written in two parts, split_gap_s apart
    delay_s: float = 0.0  # added to every pen->host frame
    split_gap_s: float = 0.002
    drop_in: tuple[int, ...] = ()  # host->pen frames of these MsgTypes are lost
    delay_in: tuple[int, ...] = ()  # host->pen frames of these MsgTypes arrive delay_in_s late
    delay_in_s: float = 0.0

    @property
    def any(self) -> bool:
        return any((self.drop_p, self.flip_p, self.junk_p, self.dup_p, self.split_p, self.delay_s,
                    self.drop_in, self.delay_in))


@dataclass(order=True)
class ScheduledFault:
    """`action` (a DeviceFault value or a link event) at `at_s` seconds after the simulator
    started; `until_s` removes the cause (device) or ends the stall / reconnects (link)."""

    at_s: float
    action: str = field(compare=False)
    until_s: float | None = field(default=None, compare=False)


@dataclass
class RandomFault:
    """A device fault occurring at random, `rate_per_s` on average, its cause lasting `hold_s`."""

    fault: DeviceFault
    rate_per_s: float
    hold_s: float = 0.5


@dataclass
class FaultPlan:
    """A parsed fault spec."""

    link: LinkFaultConfig = field(default_factory=LinkFaultConfig)
    schedule: list[ScheduledFault] = field(default_factory=list)
    random: list[RandomFault] = field(default_factory=list)


_LINK_KEYS = {"drop": "drop_p", "flip": "flip_p", "junk": "junk_p", "dup": "dup_p",
              "split": "split_p", "delay": "delay_s"}
_TYPE_KEYS = ("drop_type", "delay_type")


def _msg_types(text: str) -> tuple[int, ...]:
    """`ESTOP+NEEDLE_STOP` -> their type codes; `*` -> every host->pen type."""
    if text.strip() == "*":
        return tuple(sorted(int(t) for t in HOST_TO_PEN))
    out = []
    for name in text.split("+"):
        key = name.strip().upper()
        if key not in MsgType.__members__ or MsgType[key] not in HOST_TO_PEN:
            known = " ".join(sorted(MsgType(t).name for t in HOST_TO_PEN))
            raise ValueError(f"{name.strip()!r} is no host->pen message type; known: {known}, *")
        out.append(int(MsgType[key]))
    return tuple(out)


def _type_fault(plan: FaultPlan, key: str, value: str) -> None:
    if key == "drop_type":
        plan.link.drop_in = _msg_types(value)
        return
    types, sep, seconds = value.rpartition(":")
    if not sep:
        raise ValueError("expected delay_type=TYPE:SECONDS, e.g. delay_type=ESTOP:0.6")
    delay_s = float(seconds)
    if not 0 <= delay_s < float("inf"):
        raise ValueError(f"delay {seconds!r} must be a finite number of seconds >= 0")
    plan.link.delay_in, plan.link.delay_in_s = _msg_types(types), delay_s


def _action(name: str) -> str:
    name = name.strip().lower().replace("-", "_")
    if name in LINK_EVENTS:
        return name
    try:
        return DeviceFault(name).value
    except ValueError:
        known = ", ".join([*(f.value for f in DeviceFault), *LINK_EVENTS])
        raise ValueError(f"unknown fault {name!r}; known: {known}") from None


def parse_fault_spec(spec: str | None) -> FaultPlan:
    """Parse a fault spec (see the module doc), e.g. `"drop=0.01,jam@2.0-3.0,brownout~0.1"`."""
    plan = FaultPlan()
    for raw in (spec or "").replace(";", ",").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            if "=" in item:
                key, value = item.split("=", 1)
                if key.strip().lower() in _TYPE_KEYS:
                    _type_fault(plan, key.strip().lower(), value)
                    continue
                attr = _LINK_KEYS.get(key.strip().lower())
                if attr is None:
                    known = ", ".join([*_LINK_KEYS, *_TYPE_KEYS])
                    raise ValueError(f"unknown link fault {key!r}; known: {known}")
                number = float(value)
                top = 1.0 if attr.endswith("_p") else float("inf")
                if not 0 <= number <= top or number == float("inf"):
                    raise ValueError(f"{key.strip()}={value.strip()} is out of range "
                                     f"({'a probability 0..1' if top == 1 else 'seconds >= 0'})")
                setattr(plan.link, attr, number)
            elif "@" in item:
                name, when = item.split("@", 1)
                start, _, end = when.partition("-")
                plan.schedule.append(
                    ScheduledFault(float(start), _action(name), float(end) if end else None)
                )
            elif "~" in item:
                name, rate = item.split("~", 1)
                action = _action(name)
                if action in LINK_EVENTS:
                    raise ValueError(f"{action} cannot be random; schedule it with {action}@T")
                plan.random.append(RandomFault(DeviceFault(action), float(rate)))
            else:
                raise ValueError("expected NAME=P, NAME@T[-T2] or NAME~RATE")
        except ValueError as exc:
            raise ValueError(f"bad fault spec item {item!r}: {exc}") from None
    plan.schedule.sort()
    return plan


class LinkFaults:
    """Applies link faults to the byte stream. One-shot faults are armed by the methods below."""

    def __init__(self, config: LinkFaultConfig | None = None, seed: int = 0) -> None:
        self.config = config or LinkFaultConfig()
        self._rng = random.Random(f"{seed}:link")
        self.stats: Counter[str] = Counter()  # what was done, for tests and QA logs
        self._drop_frames = 0
        self._corrupt_frames = 0
        self._dup_frames = 0
        self._split_frames = 0
        self._junk: list[bytes] = []
        self.stalled_until_s: float | None = None
        # host -> pen frames by message type: None = every type; see drop_inbound/delay_inbound
        self._in_drop: set[int] | None = set()
        self._in_delay: tuple[float, set[int] | None] | None = None
        if self.config.drop_in:
            self.drop_inbound(*self.config.drop_in)
        if self.config.delay_in:
            self.delay_inbound(self.config.delay_in_s, *self.config.delay_in)

    # -- on demand ----------------------------------------------------------------------
    def drop_next_frames(self, n: int = 1) -> None:
        self._drop_frames += n

    def corrupt_next_frames(self, n: int = 1) -> None:
        self._corrupt_frames += n

    def duplicate_next_frames(self, n: int = 1) -> None:
        self._dup_frames += n

    def split_next_frames(self, n: int = 1) -> None:
        self._split_frames += n

    def inject_junk(self, data: bytes | None = None, n_bytes: int = 8) -> None:
        """Junk bytes written to the host before the next frame (random ones if not given)."""
        self._junk.append(data if data is not None else self._rng.randbytes(n_bytes))

    def stall(self, now_s: float, duration_s: float | None = None) -> None:
        """Nothing gets through either way (a wedged link) for duration_s, or until unstall()."""
        self.stalled_until_s = float("inf") if duration_s is None else now_s + duration_s

    def unstall(self) -> None:
        self.stalled_until_s = None

    def stalled(self, now_s: float) -> bool:
        if self.stalled_until_s is None:
            return False
        if now_s >= self.stalled_until_s:
            self.stalled_until_s = None
            return False
        return True

    def drop_inbound(self, *types: int) -> None:
        """Lose every host->pen frame of these message types (none given: every frame),
        until clear_inbound(). The pen -> host direction is untouched (telemetry flows)."""
        self._in_drop = set(map(int, types)) if types else None

    def delay_inbound(self, delay_s: float, *types: int) -> None:
        """Deliver host->pen frames of these types (none given: every frame) `delay_s` late."""
        self._in_delay = (delay_s, set(map(int, types)) if types else None)

    def clear_inbound(self) -> None:
        self._in_drop, self._in_delay = set(), None

    def inbound_frames(self, data: bytes, now_s: float) -> list[tuple[float, bytes]]:
        """Host -> pen bytes after every link fault: (extra delay s, chunk) in order."""
        data = self.inbound(data, now_s)
        if not data or (self._in_drop == set() and self._in_delay is None):
            return [(0.0, data)] if data else []
        out: list[tuple[float, bytes]] = []
        for mtype, chunk in _split_frames(data):
            if mtype is not None and (self._in_drop is None or mtype in self._in_drop):
                self.stats["dropped_frames_in"] += 1
                continue
            delay_s = 0.0
            if self._in_delay is not None and mtype is not None:
                d, types = self._in_delay
                if types is None or mtype in types:
                    delay_s = d
                    self.stats["delayed_frames_in"] += 1
            out.append((delay_s, chunk))
        return out

    # -- applying ------------------------------------------------------------------------
    def _bytes(self, data: bytes) -> bytes:
        cfg = self.config
        if not (cfg.drop_p or cfg.flip_p):
            return data
        rng, out = self._rng, bytearray()
        for b in data:
            if cfg.drop_p and rng.random() < cfg.drop_p:
                self.stats["dropped_bytes"] += 1
                continue
            if cfg.flip_p and rng.random() < cfg.flip_p:
                b ^= 1 << rng.randrange(8)
                self.stats["flipped_bits"] += 1
            out.append(b)
        return bytes(out)

    def inbound(self, data: bytes, now_s: float) -> bytes:
        """Host -> pen bytes after the link's faults."""
        if self.stalled(now_s):
            self.stats["stalled_bytes_in"] += len(data)
            return b""
        return self._bytes(data)

    def outbound(self, frame: bytes, now_s: float) -> list[tuple[float, bytes]]:
        """One pen -> host frame after the link's faults: (extra delay s, chunk) in order."""
        cfg, rng = self.config, self._rng
        if self.stalled(now_s):
            self.stats["stalled_frames"] += 1
            return []
        if self._drop_frames:
            self._drop_frames -= 1
            self.stats["dropped_frames"] += 1
            return []
        out: list[tuple[float, bytes]] = []
        delay = cfg.delay_s
        if self._junk:
            out.append((delay, self._junk.pop(0)))
            self.stats["junk_bursts"] += 1
        elif cfg.junk_p and rng.random() < cfg.junk_p:
            out.append((delay, rng.randbytes(rng.randint(1, 16))))
            self.stats["junk_bursts"] += 1
        if self._corrupt_frames:
            self._corrupt_frames -= 1
            i = rng.randrange(2, len(frame))  # past the sync marker: a real CRC failure
            frame = frame[:i] + bytes((frame[i] ^ (1 << rng.randrange(8)),)) + frame[i + 1 :]
            self.stats["corrupted_frames"] += 1
        frame = self._bytes(frame)
        copies = 1
        if self._dup_frames or (cfg.dup_p and rng.random() < cfg.dup_p):
            self._dup_frames = max(0, self._dup_frames - 1)
            copies = 2
            self.stats["duplicated_frames"] += 1
        for _ in range(copies):
            if self._split_frames or (cfg.split_p and rng.random() < cfg.split_p):
                self._split_frames = max(0, self._split_frames - 1)
                cut = rng.randrange(1, len(frame)) if len(frame) > 1 else 1
                out.append((delay, frame[:cut]))
                out.append((delay + cfg.split_gap_s, frame[cut:]))
                self.stats["split_frames"] += 1
            else:
                out.append((delay, frame))
        return out


def _split_frames(data: bytes) -> list[tuple[int | None, bytes]]:
    """Cut a host write into (message type, frame bytes); bytes that are no whole frame come
    through as (None, bytes). Judged by the header only: a damaged frame is the pen's to reject."""
    out: list[tuple[int | None, bytes]] = []
    i = 0
    while i < len(data):
        if data[i:i + 2] == SYNC and i + 5 <= len(data):
            end = i + data[i + 2] + OVERHEAD
            if end <= len(data):
                out.append((data[i + 4], data[i:end]))
                i = end
                continue
        out.append((None, data[i:]))
        break
    return out
