"""Review 17 (b17b, fixed): `smp calibrate --service URL --tolerance-mm 0.05` (a guided run) took
the option, asked for every reading, spun the needle, verified, and then the service refused
the save with its default 0.02 mm: exit 2 (a bad option), no report, no command to run again.
docs/service.md: the service checks "with the station's default bounds (not the client's
`--tolerance-mm` and the like)". Now a bound looser than the service's is refused before the
first reading (exit 2, naming the option); a tighter one is the client's own stricter run.

`smp calibrate --service` runs against a real `smp serve` whose pen is on its virtual clock
(`pensim://?clock=virtual`): the refusal comes before any reading, so no gauge is needed, and
no wall-clock deadline of a pen in another process is met or missed on a loaded machine (an
`smp sim` process on the wall clock, as this test had, is the kind that missed four tries of
a request beside two busy loops). A run that asks for a reading instead is the defect: its
input is closed at the first prompt, and the assertion names it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

SMP = str(Path(sys.executable).with_name("smp"))
DEADLINE_S = 60.0


def guided_through_service(data_dir: Path) -> tuple[int, str]:
    env = {**os.environ, "SMP_DATA_DIR": str(data_dir)}
    srv = subprocess.Popen([SMP, "serve", "--port", "pensim://?clock=virtual", "--listen",
                            "127.0.0.1:0", "--no-socket"], stdout=subprocess.PIPE, text=True,
                           env=env)
    try:
        srv.stdout.readline()
        url = srv.stdout.readline().split()[-1]  # "  JSON-RPC:  ws://..."
        return _typed(env, url)
    finally:
        srv.terminate()
        srv.wait(20)


def _typed(env: dict, url: str) -> tuple[int, str]:
    cal = subprocess.Popen([SMP, "calibrate", "--service", url, "-t", "ana", "--spin-seconds",
                            "0.5", "--tolerance-mm", "0.05"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = b""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        ready, _, _ = select.select([cal.stdout], [], [], 1.0)
        if ready:
            chunk = os.read(cal.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        if out.rstrip().endswith(b"abort):") and not cal.stdin.closed:
            cal.stdin.close()  # a reading asked for: the defect; no answer, the run ends
    return cal.wait(30), out.decode()


def test_a_tolerance_the_service_will_not_take_is_refused_before_the_first_reading(tmp_path):
    rc, out = guided_through_service(tmp_path)
    assert "Read the gauge" not in out, out[-600:]  # refused before the first reading
    assert rc == 2 and "--tolerance-mm 0.05" in out and "0.02" in out, (rc, out[-600:])


def test_a_looser_speed_tolerance_is_refused_before_connecting(tmp_path):
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path)}
    done = subprocess.run([SMP, "calibrate", "--service", "ws://127.0.0.1:9", "-t", "ana",
                           "--speed-tolerance-pct", "5"], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "--speed-tolerance-pct 5" in done.stderr, done.stderr


def test_bounds_as_tight_or_tighter_than_the_services_are_taken():
    from smpdevice.calibration.report import CalibrationSettings
    from smpdevice.cli.calibrate_remote import service_settings

    for settings in (CalibrationSettings(), CalibrationSettings(
            fit_tolerance_mm=0.01, verify_tolerance_mm=0.01, speed_tolerance_pct=1.0)):
        service_settings(settings)  # no refusal
