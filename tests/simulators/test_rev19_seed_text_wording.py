"""Review 19 QA (docs/simulator.md): text where a number goes (`seed=abc`) is "no whole
number", from the pensim:// handler itself and from `smp sim --seed`/`smp demo --seed`; a
number past the range stays "out of range"."""

import subprocess
import sys
from pathlib import Path

import pytest
import serial

import simulators  # noqa: F401  (puts the pensim:// handler in place)

SMP = Path(sys.executable).with_name("smp")


@pytest.mark.parametrize("option", ["seed=abc", "lease=abc", "telemetry=1_0", "baud=%205",
                                    "seed=", "lease=1.5"])
def test_pensim_handler_says_no_whole_number(option):
    with pytest.raises(serial.SerialException) as info:
        serial.serial_for_url(f"pensim://?{option}", timeout=0)
    assert "no whole number" in str(info.value), str(info.value)
    assert "out of range" not in str(info.value)


@pytest.mark.parametrize("option", ["lease=0", "seed=" + "9" * 25, "telemetry=-1"])
def test_pensim_handler_out_of_range_stays(option):
    with pytest.raises(serial.SerialException, match="is out of range"):
        serial.serial_for_url(f"pensim://?{option}", timeout=0)


@pytest.mark.parametrize("command", ["sim", "demo"])
@pytest.mark.parametrize("seed", ["abc", "1_0"])
def test_smp_seed_text_says_no_whole_number(tmp_path, command, seed):
    env = {"PATH": "/usr/bin:/bin", "SMP_DATA_DIR": str(tmp_path), "TMPDIR": str(tmp_path)}
    result = subprocess.run([str(SMP), command, "--seed", seed], env=env, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "no whole number" in result.stderr, result.stderr
    assert "out of range" not in result.stderr
