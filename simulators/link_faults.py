"""Link faults applied to the byte stream between host and pen (see simulators/faults.py for
the fault spec that configures them and the device faults)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass

from firmware_protocol.codes import MsgType
from firmware_protocol.frame import OVERHEAD, SYNC
from firmware_protocol.messages import HOST_TO_PEN

MAX_DELAY_S = 7 * 24 * 3600.0  # faults.MAX_TIME_S: a week
MAX_JUNK_BYTES = 1 << 16  # junk before one frame: far more than any link garbles at once


class FaultSpecError(ValueError):
    """A fault spec the simulator refuses: the message names the item, the value and the
    allowed range. A ValueError, so `pensim://` and `smp sim` report it as one line."""


def _checked(name: str, value: object, high: float, integer: bool = False) -> float:
    """`value` as a number in 0..high (a whole one if `integer`), else FaultSpecError naming
    `name`: a NaN delay would stop every later frame, a negative count drop them all."""
    kind = "a whole number" if integer else "a finite number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if ok_type and not isinstance(value, bool) and 0 <= value <= high:  # NaN fails this too
        return value  # type: ignore[return-value]
    raise FaultSpecError(f"{name}={value!r} is refused: give {kind} >= 0 and <= {high:g}")


def host_types(name: str, codes: tuple[object, ...]) -> set[int]:
    """`codes` as host->pen message type codes, else FaultSpecError naming `name`: only
    host->pen frames pass the inbound filters, any other code would never match (and a fault
    spec could not say it)."""
    out: set[int] = set()
    for code in codes:
        value = int(_checked(f"{name} type", code, 255, integer=True))
        if value not in HOST_TO_PEN:
            known = MsgType(value).name if value in MsgType._value2member_map_ else \
                "no message type"
            codes_in = "..".join(str(c) for c in (min(HOST_TO_PEN), max(HOST_TO_PEN)))
            raise FaultSpecError(f"{name} type {value} ({known}) is refused: give "
                                 f"host->pen message type codes ({codes_in})")
        out.add(value)
    return out


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

    def check(self) -> None:
        """Every field in range (FaultSpecError naming the first one that is not)."""
        for name in ("drop_p", "flip_p", "junk_p", "dup_p", "split_p"):
            _checked(name, getattr(self, name), 1.0)
        for name in ("delay_s", "split_gap_s", "delay_in_s"):
            _checked(name, getattr(self, name), MAX_DELAY_S)
        for name in ("drop_in", "delay_in"):
            if not isinstance(getattr(self, name), tuple):
                raise FaultSpecError(f"{name}={getattr(self, name)!r} is refused: give a "
                                     "tuple of message type codes")
            codes = getattr(self, name)
            host_types(name, codes)
            for code in codes:
                if codes.count(code) > 1:
                    raise FaultSpecError(f"{name} type {code} is given twice: give each "
                                         "type once")

    @property
    def any(self) -> bool:
        return any((self.drop_p, self.flip_p, self.junk_p, self.dup_p, self.split_p, self.delay_s,
                    self.drop_in, self.delay_in))


class LinkFaults:
    """Applies link faults to the byte stream. One-shot faults are armed by the methods below."""

    def __init__(self, config: LinkFaultConfig | None = None, seed: int = 0) -> None:
        self.config = config or LinkFaultConfig()
        self.config.check()  # here, not as a dead link or a stopped clock later
        self._rng = random.Random(f"{seed}:link")
        self.stats: Counter[str] = Counter()  # what was done, for tests and QA logs
        self._drop_frames = 0
        self._corrupt_frames = 0
        self._dup_frames = 0
        self._split_frames = 0
        self._junk: list[bytes] = []
        self.stalled_until_s: float | None = None  # a stall by hand (stall()) ends then
        self._stall_causes: set[Hashable] = set()  # scheduled stall windows under way
        # The earliest start of a stall the simulator has not yet seen: what was in flight
        # then never arrives (it drops that and sets this back to None).
        self.stall_began_s: float | None = None
        # host -> pen frames by message type: None = every type; see drop_inbound/delay_inbound
        self._in_drop: set[int] | None = set()
        self._in_tail = b""  # a frame's first bytes, held for the write that brings its rest
        self._in_delay: tuple[float, set[int] | None] | None = None
        if self.config.drop_in:
            self.drop_inbound(*self.config.drop_in)
        if self.config.delay_in:
            self.delay_inbound(self.config.delay_in_s, *self.config.delay_in)

    # -- on demand ----------------------------------------------------------------------
    def drop_next_frames(self, n: int = 1) -> None:
        self._drop_frames += int(_checked("n", n, 1 << 32, integer=True))

    def corrupt_next_frames(self, n: int = 1) -> None:
        self._corrupt_frames += int(_checked("n", n, 1 << 32, integer=True))

    def duplicate_next_frames(self, n: int = 1) -> None:
        self._dup_frames += int(_checked("n", n, 1 << 32, integer=True))

    def split_next_frames(self, n: int = 1) -> None:
        self._split_frames += int(_checked("n", n, 1 << 32, integer=True))

    def inject_junk(self, data: bytes | None = None, n_bytes: int = 8) -> None:
        """Junk bytes written to the host before the next frame (random ones if not given:
        `n_bytes` of them). `data` must be bytes (a count is `n_bytes=`): refused when called
        (FaultSpecError), never met later by the pen's output as a lost link."""
        if data is None:
            n_bytes = int(_checked("n_bytes", n_bytes, MAX_JUNK_BYTES, integer=True))
            data = self._rng.randbytes(n_bytes)
        elif isinstance(data, bytes | bytearray | memoryview):
            data = bytes(data)
            if len(data) > MAX_JUNK_BYTES:
                raise FaultSpecError(f"data of {len(data)} bytes is refused: give at most "
                                     f"{MAX_JUNK_BYTES} bytes of junk")
        else:
            raise FaultSpecError(f"data={data!r:.40} is refused: give the junk as bytes "
                                 "(b'\\x00\\xff'), or n_bytes=N for N random bytes")
        self._junk.append(data)

    def stall(self, now_s: float, duration_s: float | None = None,
              cause: Hashable | None = None) -> None:
        """Nothing gets through either way (a wedged link) for duration_s, or until unstall().
        Frames in flight when it begins (delayed, late by type, paced) are lost too: the
        simulator drops them (see `stall_began_s`). `cause`: a scheduled window's own cause,
        held until `unstall(cause)`, so overlapping windows do not end each other."""
        if not isinstance(now_s, int | float) or not math.isfinite(now_s):
            raise FaultSpecError(f"now_s={now_s!r} is refused: give the clock's now "
                                 "(sim.clock.now())")
        if duration_s is not None:
            duration_s = _checked("duration_s", duration_s, MAX_DELAY_S)
        if cause is None:  # by hand: the longer of this one and one already under way
            until_s = math.inf if duration_s is None else now_s + duration_s
            if self.stalled_until_s is not None and self.stalled_until_s > now_s:
                until_s = max(until_s, self.stalled_until_s)
            self.stalled_until_s = until_s
        else:
            self._stall_causes.add(cause)
        if self.stall_began_s is None or now_s < self.stall_began_s:
            self.stall_began_s = now_s

    def unstall(self, cause: Hashable | None = None) -> None:
        """End the stall (`cause`: only that window's cause; the link stays stalled while
        another is held)."""
        if cause is None:
            self.stalled_until_s = None
            self._stall_causes.clear()
        else:
            self._stall_causes.discard(cause)

    def stalled(self, now_s: float) -> bool:
        if self._stall_causes:
            return True
        if self.stalled_until_s is None:
            return False
        if now_s >= self.stalled_until_s:
            self.stalled_until_s = None
            return False
        return True

    def passthrough(self, now_s: float) -> bool:
        """No fault touches bytes now, either way: they pass unchanged and no random number is
        drawn (so a fast path that skips this class changes nothing)."""
        cfg = self.config
        return not (
            cfg.drop_p or cfg.flip_p or cfg.junk_p or cfg.dup_p or cfg.split_p or cfg.delay_s
            or self._drop_frames or self._corrupt_frames or self._dup_frames
            or self._split_frames or self._junk or self._in_drop is None or self._in_drop
            or self._in_delay is not None or self.stalled(now_s)
        )

    def drop_inbound(self, *types: int) -> None:
        """Lose every host->pen frame of these message types (none given: every frame),
        until clear_inbound(). The pen -> host direction is untouched (telemetry flows)."""
        self._in_drop = host_types("drop_inbound", types) if types else None

    def delay_inbound(self, delay_s: float, *types: int) -> None:
        """Deliver host->pen frames of these types (none given: every frame) `delay_s` late."""
        delay_s = _checked("delay_s", delay_s, MAX_DELAY_S)
        self._in_delay = (delay_s, host_types("delay_inbound", types) if types else None)

    def clear_inbound(self) -> None:
        self._in_drop, self._in_delay = set(), None

    def inbound_frames(self, data: bytes, now_s: float) -> list[tuple[float, bytes]]:
        """Host -> pen bytes after every link fault: (extra delay s, chunk), by delay.

        The frames of one write that arrive together are one chunk, so the pen reads them in
        one read, as without type faults: a NEEDLE_START or CLEAR_FAULTS before an ESTOP in one
        write is still judged against that ESTOP (docs/protocol.md section 9) when a type fault
        drops or delays other frames of the write."""
        data = self.inbound(data, now_s)
        held, self._in_tail = self._in_tail, b""
        data = held + data
        if not data or (self._in_drop == set() and self._in_delay is None):
            return [(0.0, data)] if data else []
        chunks = _split_frames(data)
        tail = chunks[-1][1] if chunks and chunks[-1][0] is None else b""
        if _frame_start(tail) and (not held or len(tail) < len(data)):
            # A frame written in two pieces is judged by its type when its rest comes (it
            # escaped every type fault). Held once only: a start that never completes (a
            # damaged length) passes with the next write, as any bytes that are no frame.
            self._in_tail = chunks.pop()[1]
        by_delay: dict[float, bytearray] = {}  # in order of first appearance: 0.0 first
        for mtype, chunk in chunks:
            if mtype is not None and (self._in_drop is None or mtype in self._in_drop):
                self.stats["dropped_frames_in"] += 1
                continue
            delay_s = 0.0
            if self._in_delay is not None and mtype is not None:
                d, types = self._in_delay
                if types is None or mtype in types:
                    delay_s = d
                    self.stats["delayed_frames_in"] += 1
            by_delay.setdefault(delay_s, bytearray()).extend(chunk)
        return sorted(((delay_s, bytes(chunk)) for delay_s, chunk in by_delay.items()),
                      key=lambda item: item[0])

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


def _frame_start(data: bytes) -> bool:
    """Whether `data` (no whole frame) is the start of one: SYNC, or its first byte."""
    return data[:2] == SYNC if len(data) >= 2 else data == SYNC[:1]


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
