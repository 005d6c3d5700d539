"""The clinic-day soak as a benchmark: the same day the slow test runs, with its figures.

    .venv/bin/python bench/soak.py [--hours 8] [--dir DIR] [--json PATH]

Runs `clinic_day` from tests/smpdevice/sessions/test_clinic_day.py: the real `PenController`
and `TreatmentSession` on the simulator's virtual clock, a client every ~26 virtual minutes
(4 passes of 90 s, then a 20 min break), every pass in a real SQLite pass log. Prints virtual
hours, sessions, passes, wall and CPU time, traced memory after the first session and at the
end (and RSS), frames exchanged, whether every session closed and the log verifies, and the
load average; exit status 1 if any check the test makes fails. Nice it on a shared machine
(`nice -n 10`): the full day costs minutes of CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.smpdevice.sessions.test_clinic_day import (  # the test's own day
    GROWTH_LIMIT_B,
    PASSES,
    DayFigures,
    clinic_day,
    write_figures,
)


def problems(fig: DayFigures) -> list[str]:
    """The test's checks, as sentences (empty: the day passed)."""
    checks = {
        "the pen ended idle": fig.pen_state_at_end == "idle",
        "no fault latched": fig.pen_faults_at_end == 0,
        "the pass log verifies": fig.chain_verified,
        "the whole day ran": fig.virtual_hours >= fig.hours_requested * 0.95,
        "clients all day": fig.sessions >= max(2, int(fig.hours_requested * 2)),
        "every session closed": fig.sessions_closed == fig.sessions,
        "every pass completed": fig.passes == PASSES * fig.sessions,
        "every pass logged": fig.passes_logged == fig.passes,
        f"traced memory grew < {GROWTH_LIMIT_B:,} B": fig.growth_b < GROWTH_LIMIT_B,
    }
    return [name for name, ok in checks.items() if not ok]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="virtual hours (default 8)")
    parser.add_argument("--dir", type=Path, help="where the pass log goes (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 0.25 <= args.hours <= 24:  # under 0.25 h there is no room for two clients
        parser.error(f"--hours {args.hours}: give 0.25 to 24 virtual hours")
    with tempfile.TemporaryDirectory(prefix="smp-soak-") as tmp:
        directory = args.dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fig = clinic_day(args.hours, directory)
        except AssertionError as exc:  # a session that did not complete all its passes
            print(f"FAIL: {exc}")
            return 1
    print(f"clinic day, {args.hours:g} h virtual (started {fig.started_at})")
    for line in fig.lines():
        print("  " + line)
    print("  traced memory per session (B): " + " ".join(f"{b:,}" for b in
                                                           fig.traced_per_session_b))
    if args.json:
        print(f"  figures: {write_figures(fig, args.json)}")
    failed = problems(fig)
    print("PASS" if not failed else "FAIL: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
