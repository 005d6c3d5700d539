"""Review 19 (qa): docs/simulator.md step 2: `match` (exit 0) says this version decides as the
field one did. A session recorded by THIS controller must replay as a match, also one whose
pass is cut by a brownout at its planned end (pen time ~3.1 s of
examples/session1_base_density.yaml). Found: `first difference: state #2 ...: expected running
-> fault; got running -> armed`: the planned-end NEEDLE_STOP and the lease renewal fall due at
one instant; the renewal's NACK BOOTING latched the reboot, the stop's was taken as a refused
stop, and a later stop's ACK read `armed` (@3.15, @3.16); a stop sent after the pen's EVENT
BOOTED but before its first report was ACKed too (@3.12, a race). Now any NACK BOOTING of a
session's request, and the EVENT BOOTED, latch the reboot at once."""

import pytest

from tests.smpdevice.replay.conftest import ROOT, calibrated_station, replay_last
from tests.smpdevice.shell import smp

PEN = "pensim://?seed=3&clock=virtual"


# Each moment its own case (pytest-xdist spreads them: as one sweep it was the suite's longest
# test, 110 s on a loaded CI run); the station's calibration is made once per test run. `smp
# run` runs in this process (shell.smp answers as a process would, with the same environment):
# the promise is its exit status and what it recorded, not anything about a process; its pen
# (the simulator, on virtual time) lived inside the `smp` process anyway.
@pytest.mark.parametrize("at_s", ["3.12", "3.14", "3.15", "3.16"])  # around pass 1's end
def test_brownout_at_pass_end_replays_as_match(tmp_path_factory, tmp_path, monkeypatch, at_s):
    env = calibrated_station(tmp_path_factory, tmp_path / "data", monkeypatch, PEN)
    run = smp(["run", "examples/session1_base_density.yaml", "--port",
               f"{PEN}&faults=brownout@{at_s}", "-t", "ana", "--screening",
               "examples/screening_clear.yaml"], env=env, cwd=ROOT, input="")
    # the brownout latched POWER_RESET
    assert run.returncode == 4, run.stdout[-800:] + run.stderr[-800:]
    verdict = replay_last(env)
    assert verdict.exit_code == 0, verdict.output[-600:]
    assert verdict.output.strip().splitlines()[-1].startswith("match: session"), verdict.output
