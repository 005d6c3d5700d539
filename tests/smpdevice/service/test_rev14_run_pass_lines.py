"""Review 14 (svc): `smp run --service` "prints each pass and the result like a local run"
(docs/service.md, "From the command line"). A local run prints each pass as it ends; through
the service a pass's line was held back until the session's result, so while pass 2 played
nothing said pass 1 had completed, and when the service went away mid-session (exit 6) the
passes that had completed were never printed at all."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.smpdevice.service.conftest import InNeedleRun, service_with_held_leases

SMP = str(Path(sys.executable).with_name("smp"))
ROOT = Path(__file__).resolve().parents[3]
PRINT_WAIT_S = 10.0  # the CLI's own time to print a notification it got (pen time is held)


@pytest.fixture(name="sim")
def _virtual(vsim):
    return vsim


def test_a_pass_is_printed_when_it_ends_not_only_with_the_result(sim, data_dir):
    with service_with_held_leases(sim, data_dir) as service:
        second = InNeedleRun(sim, run_index=1, hold=True)  # pen time stands in pass 2
        env = dict(os.environ, SMP_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [SMP, "run", str(ROOT / "examples/session1_base_density.yaml"), "--service",
             service.url, "-t", "ana", "--screening",
             str(ROOT / "examples/screening_clear.yaml")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        printed = threading.Condition()

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                with printed:
                    lines.append(line)
                    printed.notify_all()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert second.fired.wait(60), "pass 2 never started"
            with printed:  # pass 1 ended before pass 2 began; the pen now stands still
                shown = printed.wait_for(lambda: any(
                    s.split()[:2] == ["pass", "1"] and "completed" in s for s in lines),
                    PRINT_WAIT_S)
            assert shown, "".join(lines)
        finally:
            second.release()
            proc.wait(60)
            reader.join(10)
        assert proc.returncode == 0, "".join(lines)
