"""Review 19 (qa): docs/simulator.md step 2: `match` (exit 0) says this version decides as the
field one did. A session recorded by THIS controller must replay as a match, also one whose
pass is cut by a brownout at its planned end (pen time ~3.1 s of
examples/session1_base_density.yaml). Found: `first difference: state #2 ...: expected running
-> fault; got running -> armed`: the planned-end NEEDLE_STOP and the lease renewal fall due at
one instant; the renewal's NACK BOOTING latched the reboot, the stop's was taken as a refused
stop, and a later stop's ACK read `armed` (@3.15, @3.16); a stop sent after the pen's EVENT
BOOTED but before its first report was ACKed too (@3.12, a race). Now any NACK BOOTING of a
session's request, and the EVENT BOOTED, latch the reboot at once."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SMP = Path(sys.executable).with_name("smp")
PEN = "pensim://?seed=3&clock=virtual"


def _smp(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SMP), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_brownout_at_pass_end_replays_as_match(tmp_path):
    differences = []
    for at_s in ("3.12", "3.14", "3.15", "3.16"):  # around pass 1's end
        data = tmp_path / at_s
        data.mkdir()
        env = {**os.environ, "SMP_DATA_DIR": str(data), "TMPDIR": str(data)}
        env.pop("SMP_SIM_CLOCK", None)
        assert _smp(env, "calibrate", "--port", PEN, "--auto").returncode == 0
        run = _smp(env, "run", "examples/session1_base_density.yaml", "--port",
                   f"{PEN}&faults=brownout@{at_s}", "-t", "ana", "--screening",
                   "examples/screening_clear.yaml")
        assert run.returncode == 4, run.stdout[-800:]  # the brownout latched POWER_RESET
        verdict = _smp(env, "replay", "last")
        if verdict.returncode != 0:
            differences.append((at_s, verdict.stdout.strip().splitlines()[-1][:300]))
    assert differences == []
