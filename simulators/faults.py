"""Faults QA can inject: on the link (bytes between host and pen) and in the device.

Three ways to cause each one, all repeatable from a seed (every random draw comes from
`random.Random` seeded from the simulator's seed):
- on demand: `sim.inject(DeviceFault.JAM)`, `sim.link.drop_next_frames(2)`, `sim.disconnect()`;
- on a schedule: `ScheduledFault(at_s=2.0, action="jam")`, or `"jam@2.0-3.5"` in a fault spec;
- with a probability: `LinkFaultConfig(drop_p=0.01)` per byte, or `"jam~0.05"` (per second).

Fault spec (the `faults=` option of `pensim://` and `smp sim --faults`), ASCII items joined by
commas; each NAME=VALUE key at most once; numbers are ASCII decimals (2.5, 1e-3, not 1_0):
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
    NAME@T1-T2           on at T1, off (cause removed / link back / pedal pressed) at T2;
                         each item holds its own cause: overlapping ones never end each other
    NAME~R               a device fault at random, R times per second on average; its cause
                         goes away again after 0.5 s
Limits (anything else is a FaultSpecError naming the item, the value and the range): every
time and delay is finite seconds in 0..MAX_TIME_S, T2 > T1, a rate R is > 0 and <= MAX_RATE_PER_S,
a probability is 0..1. `fault_spec_help()` renders this table from the parser's own tables.
"""

from __future__ import annotations

import math
import numbers
import re
import string
from dataclasses import dataclass, field
from enum import StrEnum

from firmware_protocol.codes import MsgType
from firmware_protocol.messages import HOST_TO_PEN
from simulators.firmware import PenFirmware
from simulators.link_faults import MAX_DELAY_S, FaultSpecError, LinkFaultConfig, LinkFaults

__all__ = ["FaultSpecError", "LinkFaultConfig", "LinkFaults"]  # re-exported: link_faults.py


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
MAX_TIME_S = MAX_DELAY_S  # a week: past any session; keeps clock arithmetic exact
MAX_RATE_PER_S = 10.0  # a random fault's cause lasts 0.5 s: faster ones only overlap
RANDOM_HOLD_S = 0.5


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


# An ASCII decimal number, as documented: float() alone also takes '1_0', full-width or
# Arabic-Indic digits, 'nan' and 'infinity'.
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_BLANK = string.whitespace  # ASCII blanks only: str.strip() also eats \x1c and U+3000


def _number(what: str, text: object, low: float, high: float, *, unit: str = "",
            low_open: bool = False) -> float:
    """`text` (a spec's text or a real number) as a finite float in low..high (low excluded
    if `low_open`), else FaultSpecError naming `what`, the value and the range."""
    low_text = f"> {low:g}" if low_open else f">= {low:g}"
    allowed = f"a finite number{unit} {low_text} and <= {high:g}"
    value = math.nan
    if isinstance(text, str):
        shown: object = text.strip(_BLANK)
        if not _DECIMAL.fullmatch(str(shown)):
            raise FaultSpecError(f"{what} {shown!r} is no decimal number: write ASCII digits "
                                 f"(e.g. 2.5 or 1e-3), {allowed}")
        value = float(str(shown))
    elif isinstance(text, numbers.Real) and not isinstance(text, bool):
        shown = text
        try:
            value = float(text)
        except OverflowError:  # an int past the float range
            value = math.inf
    else:
        raise FaultSpecError(f"{what} {text!r} is no number: give {allowed}")
    if math.isfinite(value) and (value > low if low_open else value >= low) and value <= high:
        return value
    raise FaultSpecError(f"{what} {shown!r} is out of range: give {allowed}")


def known_action(value: object, what: str = "action", link_events: bool = True) -> str:
    """`value` as a fault's name: a DeviceFault value (or member), or with `link_events` a link
    event; else FaultSpecError naming `what`, the value and every name allowed."""
    names = [f.value for f in DeviceFault] + (list(LINK_EVENTS) if link_events else [])
    if isinstance(value, str) and str(value) in names:
        return str(value)
    hint = ""
    if isinstance(value, str):
        spelled = value.strip(_BLANK).lower().replace("-", "_")
        hint = f" (did you mean {spelled!r}? names are lower case)" if spelled in names else ""
    raise FaultSpecError(f"{what} {value!r} is no fault{hint}: give one of {', '.join(names)}")


@dataclass(order=True)
class ScheduledFault:
    """`action` (a DeviceFault value or a link event) at `at_s` seconds after the simulator
    started; `until_s` removes the cause (device) or ends the stall / reconnects (link).
    Each one holds a cause of its own (simulators/causes.py): an overlapping item's end does
    not end it. A bad action or time is refused here, never when it would fire."""

    at_s: float
    action: str = field(compare=False)
    until_s: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:  # a NaN or inf time would kill the simulator's thread
        self.action = known_action(self.action)
        self.at_s = _number("at_s", self.at_s, 0.0, MAX_TIME_S, unit=" of seconds")
        if self.until_s is not None:
            self.until_s = _number("until_s", self.until_s, self.at_s, MAX_TIME_S,
                                   unit=" of seconds", low_open=True)


@dataclass
class RandomFault:
    """A device fault occurring at random, `rate_per_s` on average, its cause lasting `hold_s`."""

    fault: DeviceFault
    rate_per_s: float
    hold_s: float = RANDOM_HOLD_S

    def __post_init__(self) -> None:  # a huge rate would flood the simulator with events
        self.fault = DeviceFault(known_action(self.fault, "fault", link_events=False))
        self.rate_per_s = _number("rate_per_s", self.rate_per_s, 0.0, MAX_RATE_PER_S,
                                  low_open=True)
        self.hold_s = _number("hold_s", self.hold_s, 0.0, MAX_TIME_S, unit=" of seconds",
                              low_open=True)


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
    if text.strip(_BLANK) == "*":
        return tuple(sorted(int(t) for t in HOST_TO_PEN))
    out: list[int] = []
    for name in text.split("+"):
        key = name.strip(_BLANK).upper()
        if key not in MsgType.__members__ or MsgType[key] not in HOST_TO_PEN:
            known = " ".join(sorted(MsgType(t).name for t in HOST_TO_PEN))
            raise FaultSpecError(f"{name.strip(_BLANK)!r} is no host->pen message type; "
                                 f"known: {known}, *")
        if int(MsgType[key]) in out:  # harmless, but a typo for another type more likely
            raise FaultSpecError(f"message type {key} is named twice; name each type once")
        out.append(int(MsgType[key]))
    return tuple(out)


def _seconds(what: str, text: str) -> float:
    return _number(what, text, 0.0, MAX_TIME_S, unit=" of seconds")


def _type_fault(plan: FaultPlan, key: str, value: str) -> None:
    if key == "drop_type":
        plan.link.drop_in = _msg_types(value)
        return
    types, sep, seconds = value.rpartition(":")
    if not sep:
        raise FaultSpecError("expected delay_type=TYPE:SECONDS, e.g. delay_type=ESTOP:0.6")
    delay_s = _seconds("delay", seconds)
    plan.link.delay_in, plan.link.delay_in_s = _msg_types(types), delay_s


def _action(name: str) -> str:
    name = name.strip(_BLANK).lower().replace("-", "_")
    if name in LINK_EVENTS:
        return name
    try:
        return DeviceFault(name).value
    except ValueError:
        known = ", ".join([*(f.value for f in DeviceFault), *LINK_EVENTS])
        raise FaultSpecError(f"unknown fault {name!r}; known: {known}") from None


# T or T1-T2; a '-' inside an exponent (1e-3) belongs to the number, a leading one to T1
_WHEN = re.compile(r"(?P<t1>[-+]?[^-+]*?(?:[eE][-+]?\d+)?)(?:-(?P<t2>.*))?", re.S)


def _scheduled(name: str, when: str) -> ScheduledFault:
    match = _WHEN.fullmatch(when.strip(_BLANK))
    t1, t2 = (match["t1"], match["t2"]) if match else (when, None)
    at_s = _seconds("time T", t1)
    until_s = None if t2 is None else _seconds("end time T2", t2)
    if until_s is not None and until_s <= at_s:
        raise FaultSpecError(f"end time T2 {until_s:g} is out of range: give T2 > T1 = {at_s:g} "
                             f"(NAME@T1-T2: on at T1, off again at T2)")
    return ScheduledFault(at_s, _action(name), until_s)


def _link_number(plan: FaultPlan, key: str, value: str) -> None:
    attr = _LINK_KEYS.get(key)
    if attr is None:
        known = ", ".join([*_LINK_KEYS, *_TYPE_KEYS])
        raise FaultSpecError(f"unknown link fault {key!r}; known: {known}")
    if attr.endswith("_p"):
        number = _number(f"{key}", value, 0.0, 1.0, unit=" (a probability)")
    else:
        number = _seconds(key, value)
    setattr(plan.link, attr, number)


def _not_ascii(item: str) -> None:
    """The spec is plain ASCII: str.lower()/upper() would turn 'ſ' into 'S' and the Kelvin
    sign into 'k', float() takes full-width digits; refuse the first such character."""
    for char in item:
        if not char.isascii():
            raise FaultSpecError(f"character {char!r} (U+{ord(char):04X}) is not ASCII; a fault "
                                 "spec is written in ASCII letters, digits and . + - @ ~ = : *")


def _item(plan: FaultPlan, item: str, keys: dict[str, str]) -> None:
    """Parse one item into `plan`; `keys` maps each NAME=... key seen so far to its item."""
    _not_ascii(item)
    if "=" in item:
        key, value = item.split("=", 1)
        key = key.strip(_BLANK).lower()
        if key in keys:  # the last one used to win silently
            raise FaultSpecError(f"{key} is given twice (first as {keys[key]!r}); give each "
                                 "NAME=VALUE key once")
        keys[key] = item
        if key in _TYPE_KEYS:
            _type_fault(plan, key, value)
        else:
            _link_number(plan, key, value)
    elif "@" in item:
        name, when = item.split("@", 1)
        plan.schedule.append(_scheduled(name, when))
    elif "~" in item:
        name, rate = item.split("~", 1)
        action = _action(name)
        if action in LINK_EVENTS:
            raise FaultSpecError(f"{action} cannot be random; schedule it with {action}@T")
        rate_per_s = _number("rate R (faults per second)", rate, 0.0, MAX_RATE_PER_S,
                             low_open=True)
        plan.random.append(RandomFault(DeviceFault(action), rate_per_s))
    else:
        raise FaultSpecError("expected NAME=P, NAME@T[-T2] or NAME~RATE")


def parse_fault_spec(spec: str | None) -> FaultPlan:
    """Parse a fault spec (see the module doc), e.g. `"drop=0.01,jam@2.0-3.0,brownout~0.1"`.
    Raises FaultSpecError (a ValueError) for anything outside the limits there, naming the
    item; `format_fault_spec` writes a plan back as a spec that parses to the same plan."""
    if spec is not None and not isinstance(spec, str):
        raise FaultSpecError(f"a fault spec is text (e.g. 'jam@1.5'), not {type(spec).__name__}")
    plan = FaultPlan()
    keys: dict[str, str] = {}
    for raw in (spec or "").replace(";", ",").split(","):
        item = raw.strip(_BLANK)
        if not item:
            continue
        try:
            _item(plan, item, keys)
        except ValueError as exc:
            raise FaultSpecError(f"bad fault spec item {item!r}: {exc}") from None
    plan.schedule.sort()
    return plan


def format_fault_spec(plan: FaultPlan) -> str:
    """`plan` as a fault spec that `parse_fault_spec` turns back into the same plan (floats
    by repr, so exactly). Raises FaultSpecError for what a spec cannot say (a changed
    split_gap_s or hold_s)."""
    link = plan.link
    link.check()  # a value out of range (or a type no spec can name) is a FaultSpecError
    if link.split_gap_s != LinkFaultConfig.split_gap_s:
        raise FaultSpecError(f"split_gap_s {link.split_gap_s!r} has no fault spec form")
    if link.delay_in_s and not link.delay_in:
        raise FaultSpecError("delay_in_s without delay_in types has no fault spec form")

    def types(codes: tuple[int, ...]) -> str:
        every = tuple(sorted(int(t) for t in HOST_TO_PEN))
        return "*" if codes == every else "+".join(MsgType(code).name for code in codes)

    items = [f"{key}={getattr(link, attr)!r}" for key, attr in _LINK_KEYS.items()
             if getattr(link, attr)]
    if link.drop_in:
        items.append(f"drop_type={types(link.drop_in)}")
    if link.delay_in:
        items.append(f"delay_type={types(link.delay_in)}:{link.delay_in_s!r}")
    for when in plan.schedule:
        until = "" if when.until_s is None else f"-{when.until_s!r}"
        items.append(f"{when.action}@{when.at_s!r}{until}")
    for rnd in plan.random:
        if rnd.hold_s != RANDOM_HOLD_S:
            raise FaultSpecError(f"{rnd.fault.value} hold_s {rnd.hold_s!r} has no fault spec form")
        items.append(f"{rnd.fault.value}~{rnd.rate_per_s!r}")
    return ",".join(items)


def fault_spec_help(width: int = 60) -> str:
    """The fault spec's syntax for a help page, built from the parser's own tables."""
    def names(items: list[str], indent: str) -> list[str]:
        lines, line = [], ""
        for name in items:
            if line and len(line) + len(name) + 2 > width:
                lines.append(indent + line + ",")
                line = ""
            line = f"{line}, {name}" if line else name
        return [*lines, indent + line]

    pad = " " * 4
    probs = " ".join(f"{k}=P" for k, a in _LINK_KEYS.items() if a.endswith("_p"))
    seconds = " ".join(f"{k}=S" for k, a in _LINK_KEYS.items() if not a.endswith("_p"))
    return "\n".join([
        f"  {probs}   link faults, probability 0..1 per byte/frame",
        f"  {seconds}   extra latency of each pen->host frame (s)",
        "  drop_type=T[+T2..]   host->pen frames of message type T are lost (* = all)",
        "  delay_type=T[+T2..]:S   ... arrive S seconds late",
        "  NAME@T or NAME@T1-T2   at T s after start (until T2: cause removed, pedal",
        "                         pressed again, link back). NAME is a device fault:",
        *names([f.value for f in DeviceFault], pad),
        "    or a link event: " + ", ".join(LINK_EVENTS),
        f"  NAME~R   a device fault at random, R per second (0 < R <= {MAX_RATE_PER_S:g}),",
        f"           its cause lasting {RANDOM_HOLD_S:g} s",
        f"  Times and delays are seconds in 0..{MAX_TIME_S:g}; T2 > T1. Numbers are ASCII",
        "  decimals (2.5, .5, 1e-3); each NAME=VALUE key is given once.",
    ])
