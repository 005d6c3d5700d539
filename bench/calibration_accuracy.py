"""Needle penetration depth accuracy and puncture rate accuracy across simulated pens.

    .venv/bin/python bench/calibration_accuracy.py [--seeds 20] [--spin-seconds 1.0]
                                                   [--bow-mm 0.02]

Runs the whole automatic calibration (`run_calibration`: zero, depth fit, speed with the
puncture count, verify) against `--seeds` simulated pens (seeds 1..N, each its own hidden
offset and gain, gauge noise and bow, speed ripple and wander) on the virtual clock, and prints,
across the pens, the median, p95 and max of:
- depth accuracy over each pen's check readings (after the fit, not the fit points): |mean
  error|, standard deviation and |max error|, in mm;
- puncture rate accuracy: |error| in % and in Hz of every set speed (15/50/85 % of the range).
Then the same pens with their gauge bowed by `--bow-mm` (an injected nonlinearity), to show how
the figures move when the gauge is worse (0 skips that run).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulators.pen_model import PenModel
from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from tests.smpdevice.virtual_time import virtual_sim  # the suite's virtual-time driver


@dataclass
class PenFigures:
    seed: int
    passed: bool
    n: int
    mean_mm: float
    sd_mm: float
    max_mm: float
    rate_pct: list[float]  # signed, per set speed
    rate_hz: list[float]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def measure(seed: int, spin_s: float, bow_mm: float | None) -> PenFigures:
    model = PenModel(seed=seed) if bow_mm is None else PenModel(seed=seed,
                                                                gauge_nonlinearity_mm=bow_mm)
    with virtual_sim(model=model) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        report = run_calibration(ctl, SimulatorGauge(sim.url), technician="bench",
                                 settings=CalibrationSettings(spin_duration_s=spin_s))
    acc = report.verify.accuracy if report.verify is not None else None
    rates = report.puncture_rate.points if report.puncture_rate is not None else ()
    if acc is None:
        raise SystemExit(f"seed {seed}: no depth accuracy ({report.problems})")
    return PenFigures(seed, report.passed, acc.n, acc.mean_error_mm, acc.sd_mm,
                      acc.max_error_mm, [p.error_pct for p in rates],
                      [p.error_hz for p in rates])


def summary(title: str, pens: list[PenFigures]) -> None:
    print(f"\n{title}: {len(pens)} pens, {sum(p.passed for p in pens)} passed, "
          f"N = {statistics.median(p.n for p in pens):g} check readings each")
    print(f"  {'figure':38} {'median':>9} {'p95':>9} {'max':>9}")
    rows = [
        ("depth |mean error| (mm)", [abs(p.mean_mm) for p in pens], "{:9.4f}"),
        ("depth standard deviation (mm)", [p.sd_mm for p in pens], "{:9.4f}"),
        ("depth |max error| (mm)", [abs(p.max_mm) for p in pens], "{:9.4f}"),
        ("puncture rate |error| (%), all speeds", [abs(e) for p in pens for e in p.rate_pct],
         "{:9.2f}"),
        ("puncture rate |error| (Hz), all speeds", [abs(e) for p in pens for e in p.rate_hz],
         "{:9.2f}"),
        ("puncture rate worst |error| per pen (%)",
         [max(abs(e) for e in p.rate_pct) for p in pens], "{:9.2f}"),
    ]
    for name, values, fmt in rows:
        cells = "".join(fmt.format(v) for v in (statistics.median(values), pct(values, 0.95),
                                                 max(values)))
        print(f"  {name:38} {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--spin-seconds", type=float, default=1.0)
    parser.add_argument("--bow-mm", type=float, default=0.02,
                        help="gauge nonlinearity of the second run (0: skip it)")
    args = parser.parse_args()
    seeds = range(1, args.seeds + 1)
    runs: list[tuple[str, float | None]] = [("default simulated pens", None)]
    if args.bow_mm > 0:
        runs.append((f"the same pens, gauge bowed by up to {args.bow_mm:g} mm", args.bow_mm))
    for title, bow in runs:
        started = time.monotonic()
        pens = [measure(seed, args.spin_seconds, bow) for seed in seeds]
        summary(title, pens)
        print(f"  ({time.monotonic() - started:.1f} s wall, virtual clock, spin "
              f"{args.spin_seconds:g} s)")


if __name__ == "__main__":
    main()
