"""The pen the scenario vectors assume: its IDENTIFY's capabilities and limits, and its
physical inputs at power-on (docs/protocol.md section 13 is rendered from this module).

A firmware team's harness checks its pen against it (`unmet`) before it runs scenarios.json,
so a scenario that fails means the pen, not a pen the scenarios were never meant for.
"""

from __future__ import annotations

from firmware_protocol import messages as m
from firmware_protocol.codes import Capability

# IDENTIFY's capabilities and limits, as (field, lowest, highest) with None for no bound: what
# the scenarios send must be valid (SETPOINTS, a 2000 ms lease, a 50 Hz rate, the calibration
# points 0..1010 um) and what they expect refused must be out (depth 30000, lease 65535).
ASSUMED_CAPABILITIES = Capability.CALIBRATION_TABLE | Capability.FOOTSWITCH
ASSUMED_PEN: tuple[tuple[str, int | None, int | None], ...] = (
    ("depth_min_um", None, 0), ("depth_max_um", 1010, 29_999),
    ("speed_min_centihz", None, 10_000), ("speed_max_centihz", 10_000, None),
    ("duty_min_permille", None, 500), ("duty_max_permille", 500, None),
    ("period_min_us", None, 100_000), ("period_max_us", 100_000, None),
    ("lease_max_ms", 2000, 65_534), ("telemetry_max_hz", 50, None),
)
ASSUMED_AT_POWER_ON = ("a cartridge is fitted", "the pedal is down (pressed)",
                       "the stored calibration table is empty (count 0)",
                       "the boot completes within 60 ms (BOOT_MAX_MS)")


def unmet(identify: m.Identify, without: frozenset[str] = frozenset()) -> list[str]:
    """What of ASSUMED_PEN an IDENTIFY does not meet (empty: the scenarios apply to it);
    `without`: capability names a scenario's pen must lack instead."""
    out = [f"{f}={getattr(identify, f)} (want {lo} .. {hi})" for f, lo, hi in ASSUMED_PEN
           if (lo is not None and getattr(identify, f) < lo)
           or (hi is not None and getattr(identify, f) > hi)]
    caps = Capability(identify.capabilities)
    for c in ASSUMED_CAPABILITIES:
        if (c in caps) is (c.name in without):
            out.append(f"capability {c.name} {'present' if c in caps else 'missing'}")
    return out


def render_scenario_pen() -> str:
    """The pen the scenario vectors assume (ASSUMED_*)."""
    def bound(lo: int | None, hi: int | None) -> str:
        return (f"{lo} .. {hi}" if lo is not None and hi is not None
                else f">= {lo}" if lo is not None else f"<= {hi}")

    caps = ASSUMED_CAPABILITIES
    rows = [["`capabilities`", f"has {' and '.join(c.name or '' for c in caps)} "
             f"(0x{int(caps):04X}), unless the scenario's `pen.without` names one it lacks"]]
    rows += [[f"`{f}`", bound(lo, hi)] for f, lo, hi in ASSUMED_PEN]
    rows += [["at power-on", "; ".join(ASSUMED_AT_POWER_ON)]]
    return "\n".join(["| IDENTIFY field or input | assumed |", "|---|---|",
                      *(f"| {name} | {value} |" for name, value in rows)])
