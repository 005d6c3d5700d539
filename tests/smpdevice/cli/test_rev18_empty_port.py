"""Review 18 (cli): `--port ""` (a script's unset variable) never picks another pen. It was
taken as --port left out: `smp monitor --once --port ""` and `smp info --port ""` showed (and
the monitor's E-stop key would have stopped) the built-in simulator while the station config
named the real pen. Every command taking --port refuses a typed empty or blank one (exit 2,
one line) before any pen is opened; an empty SMP_PORT is taken as unset (the config's pen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main

PROFILE = Path(__file__).resolve().parents[3] / "examples" / "session1_base_density.yaml"
STATION_PEN = "/dev/ttyNOPE-review18"  # the station's (real) pen, not there in a test


@pytest.fixture
def station(monkeypatch, tmp_path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'port = "{STATION_PEN}"\n')
    monkeypatch.setenv("SMP_CONFIG", str(config))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    return Path(tmp_path)


@pytest.mark.parametrize("command", [
    ["monitor", "--once"], ["info"], ["estop"], ["clear", "--yes"],
    ["calibrate", "--auto", "-t", "ana"], ["run", str(PROFILE), "-t", "ana"],
])
@pytest.mark.parametrize("typed", ["", "  "])
def test_an_empty_port_is_refused_never_the_simulator(station, command, typed):
    done = CliRunner().invoke(main, [*command, "--port", typed])
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert f"--port {typed!r}: no pen was named" in done.output, done.output
    assert "SIMULATED" not in done.output and "pen SMP-" not in done.output, done.output
    assert "latched" not in done.output and "Traceback" not in done.output, done.output
    if command[0] == "estop":  # a stop's refusal says the stop was not sent
        assert "E-stop NOT sent" in done.output, done.output


def test_an_empty_port_beside_smp_service_is_refused_not_the_config_pen(station, monkeypatch):
    monkeypatch.setenv("SMP_SERVICE", "ws://127.0.0.1:1/rpc")
    done = CliRunner().invoke(main, ["estop", "--port", ""])
    assert done.exit_code == 2, done.output
    assert "E-stop NOT sent: --port '': no pen was named" in done.output, done.output


def test_an_empty_smp_port_is_unset_the_config_pen_is_used(station, monkeypatch):
    monkeypatch.setenv("SMP_PORT", "")
    done = CliRunner().invoke(main, ["info"])
    assert done.exit_code != 0, done.output  # the station's pen is not there in a test
    assert STATION_PEN in done.output, done.output
    assert "SIMULATED" not in done.output, done.output
