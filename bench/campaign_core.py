"""What every fault-campaign scenario shares: the result record and small helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One scenario's outcome: figures in print order, and every failure found."""

    name: str
    count: int
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, text: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(text)

    def summary(self) -> str:
        return "; ".join(f"{k} {_fmt(v)}" for k, v in self.figures.items())


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _wait(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def _calibration(sim):
    from smpdevice.control.calibration import Calibration

    return Calibration.linear(pen_serial=sim.serial, technician="campaign",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain)
