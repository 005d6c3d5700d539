"""Fault campaign: the system under load, link and device faults, bad input, crashes and full disks.

    .venv/bin/python bench/faults.py                  # every scenario, full counts (~17 min)
    .venv/bin/python bench/faults.py commands fuzz    # some scenarios
    .venv/bin/python bench/faults.py --quick          # small counts (a smoke run)

Scenarios (each also a function `scenario_<name>(...)` that tests call with smaller counts):

- commands    10,000 distinct SET_SETPOINTS over a link with 1 % flipped bits and 1 % dropped
              bytes (both ways): each completes exactly once on the pen or fails with a clear
              error; none executed twice; every call bounded (pen and host on one virtual
              clock, so the bound is checked on a clock a loaded machine cannot starve)
              (bench/faults_commands.py).
- fuzz        1,000,000 random and mutated byte strings into `StreamDecoder` and into the
              simulator firmware's receive path (`PenFirmware.receive_now`): no exception, no
              corrupted frame accepted (a decoded frame that is not one of the frames the input
              was built from, byte for byte) (bench/faults_fuzz.py).
- kills       100 treatment sessions, each controller process SIGKILLed at a random moment: the
              needle stops within the lease of the last renewal the pen received (pen's clock);
              on restart (pass-log recovery) every committed pass is present and the interrupted
              one is recorded as controller_crashed (bench/faults_sessions.py).
- disconnects 100 cable pulls while the needle runs (in turn: in-process port errors, a PTY that
              goes silent, a stalled link on a virtual clock): the pen stops the needle within
              one lease of the pull (pen's clock, every pull), the host reports the loss (within
              two leases on the virtual clock; wall-clock delays measured), the needle never
              resumes by itself, reconnect on request works (bench/faults_disconnects.py).
- disk        the pass log fails (disk full, read-only) before the pass, or the moment the pen
              starts the needle: needle stopped, a clear error, nothing committed lost.
- soak        an eight-hour clinic day (three sessions) on the virtual clock, a host driving the
              simulator directly, every pass in a real pass log; memory at start, middle and end
              (bench/faults_soak.py).
- estop       100 E-stops over a link that drops only ESTOP frames, with the needle running
              (plus 30 each: only LEASE_RENEW passes, every host frame lost, ESTOP 2 leases
              late): the needle stops within one lease every time, timed on the simulator's
              clock (bench/faults_failsafe.py).
- bombs       hostile files (alias bomb, 50 MB, 25,000-char needle, 1.69M-pass plan, deep
              nesting, duplicate keys, ...) through load_profile / load_envelope, each in a
              fresh process: refused with a typed error; time and peak memory of the refusal.
- tamper      40 runs of each attack on a real pass log by someone without the installation key
              (cut tail + head rewritten, head dropped, emptied, forged record, rollback, whole
              data directory swapped, re-signed with another key), positions drawn per run:
              caught/total per attack; the swapped directory by a kept receipt and by the
              central PostgreSQL store (bench/faults_tamper.py).

Prints one line per scenario and a results table; exit status 1 if any scenario failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.campaign_core import Result  # noqa: E402
from bench.faults_commands import scenario_commands  # noqa: E402
from bench.faults_disconnects import scenario_disconnects  # noqa: E402
from bench.faults_failsafe import scenario_bombs, scenario_estop  # noqa: E402
from bench.faults_fuzz import scenario_fuzz, scenario_residual  # noqa: E402
from bench.faults_sessions import scenario_disk, scenario_kills  # noqa: E402
from bench.faults_soak import scenario_soak  # noqa: E402
from bench.faults_tamper import scenario_tamper  # noqa: E402

# ============================================================================ the campaign

SCENARIOS: dict[str, Callable[..., Result]] = {
    "commands": scenario_commands, "fuzz": scenario_fuzz, "kills": scenario_kills,
    "disconnects": scenario_disconnects, "disk": scenario_disk, "soak": scenario_soak,
    "estop": scenario_estop, "bombs": scenario_bombs, "tamper": scenario_tamper,
    "residual": scenario_residual,
}
FULL: dict[str, dict[str, Any]] = {
    "commands": {"n": 10_000}, "fuzz": {"n": 1_000_000}, "kills": {"n": 100},
    "disconnects": {"n": 100}, "disk": {}, "soak": {"hours": 8.0},
    "estop": {"n": 100, "variant_n": 30}, "bombs": {}, "tamper": {"runs": 40},
}
QUICK: dict[str, dict[str, Any]] = {
    "commands": {"n": 300}, "fuzz": {"n": 20_000}, "kills": {"n": 4},
    "disconnects": {"n": 6}, "disk": {}, "soak": {"hours": 0.5, "break_s": 60, "pass_s": 60},
    "estop": {"n": 6, "variant_n": 3}, "bombs": {}, "tamper": {"runs": 3},
}


def run(names: list[str], quick: bool = False, echo: Callable[[str], None] = print
        ) -> list[Result]:
    results = []
    for name in names:
        kwargs = (QUICK if quick else FULL).get(name, {"n": 50_000} if quick else {})
        echo(f"-- {name} {kwargs} ...")
        result = SCENARIOS[name](**kwargs)
        echo(f"   {'PASS' if result.ok else 'FAIL'} in {result.seconds:.0f} s: {result.summary()}")
        for line in getattr(result, "details", [])[:20]:
            echo(f"   . {line}")
        for failure in result.failures[:10]:
            echo(f"   ! {failure}")
        results.append(result)
    return results


def table(results: list[Result]) -> str:
    lines = ["| scenario | count | result | figures | wall s |", "|---|---:|---|---|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.count:,} | {'PASS' if r.ok else 'FAIL'} | "
                     f"{r.summary()} | {r.seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[*FULL, "residual", []],
                        metavar="SCENARIO", help=f"any of {', '.join(FULL)} (default: all), or "
                        "residual (the CRC's residual, 2M inputs; not in the default run)")
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    args = parser.parse_args(argv)
    import structlog

    from smpdevice.logs import configure

    configure("error")
    # expected faults would flood the output (the table says it all): critical only, which
    # `smp --log-level` does not offer
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    results = run(args.scenarios or list(FULL), quick=args.quick)
    print()
    print(table(results))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
