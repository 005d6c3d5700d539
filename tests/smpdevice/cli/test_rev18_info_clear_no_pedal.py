"""With the station's `footswitch = "required"`, `smp info` and `smp clear` read and clear a pen
that has no footswitch: neither moves the needle, and a technician must be able to read the
pen and clear its faults. What would run the needle (`smp run`) still refuses that pen.
Real simulator over real bytes, the commands run as `smp` runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from firmware_protocol.codes import FirmwareState
from simulators import PenSimulator
from simulators.pen_model import PenModel
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]


def required_station(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text('footswitch = "required"\n')
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
           "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(config)}
    env.pop("SMP_FOOTSWITCH", None)
    return env


def test_info_and_clear_serve_a_pen_without_a_pedal_under_required(tmp_path):
    env = required_station(tmp_path)
    with PenSimulator(model=PenModel(seed=0, footswitch_fitted=False)) as sim:
        info = shell.smp(("info", "--port", sim.url, "--json"), env=env, cwd=ROOT)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["serial"] == sim.serial
        text = shell.smp(("info", "--port", sim.url), env=env, cwd=ROOT)
        assert text.returncode == 0, text.stderr
        assert "no footswitch" in text.stdout and "required" in text.stdout, text.stdout
        latched = shell.smp(("estop", "--port", sim.url), env=env, cwd=ROOT)
        assert latched.returncode == 0 and sim.firmware.state is FirmwareState.ESTOP
        cleared = shell.smp(("clear", "--port", sim.url, "--yes"), env=env, cwd=ROOT)
        assert cleared.returncode == 0, cleared.stderr
        assert "Cleared" in cleared.stdout, cleared.stdout
        assert sim.firmware.state is not FirmwareState.ESTOP


def test_run_still_refuses_a_pen_without_a_pedal_under_required(tmp_path):
    env = required_station(tmp_path)
    with PenSimulator(model=PenModel(seed=0, footswitch_fitted=False)) as sim:
        ran = shell.smp(("run", str(ROOT / "examples" / "session1_base_density.yaml"),
                         "--port", sim.url, "-t", "ana", "--screening",
                         str(ROOT / "examples" / "screening_clear.yaml")), env=env, cwd=ROOT)
        assert sim.firmware.state is not FirmwareState.RUNNING
    assert ran.returncode != 0
    assert "no footswitch" in ran.stderr, ran.stderr
