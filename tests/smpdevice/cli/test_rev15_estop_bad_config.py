"""Review 15, S1/S5: a broken station config never keeps `smp estop --port P` (nor the monitor,
the tool with the E-stop key) from the pen.

README: E-stop is "valid in every state"; `smp estop --port /dev/ttyACM0  # E-stop a pen now`.
A typo in the config (an unknown key, a wrong type, a bad choice, a file that is no TOML), a
bad SMP_FOOTSWITCH, or `footswitch = "required"` on a pen without a pedal made the command say
"E-stop NOT sent ... cannot be reached" (exit 6) while the pen kept idling. Now the E-stop is
sent on the built-in settings, then one `warning:` line says what to fix; exit 0. Only a pen
that cannot be told (no --port, and the config's `port` is the broken part) is refused, exit 2.
The monitor starts the same way, with or without --port (S5: both paths exit alike)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware_protocol.codes import FirmwareState
from simulators import PenSimulator, VirtualClock
from simulators.pen_model import PenModel
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[3]
# The pens here are on a clock the `smp estop` connected to them drives (as
# `pensim://?clock=virtual`): no wall-clock deadline for a loaded machine to make them miss.
BROKEN = {  # config text, environment: each breaks the station's settings another way
    "unknown key": ('footswitch = "optional"\nbogus = 1\n', {}),
    "port of the wrong type": ("port = 5\n", {}),
    "footswitch not a choice": ('footswitch = "sometimes"\n', {}),
    "not TOML": ("[[[\n", {}),
    "bad SMP_FOOTSWITCH": ('footswitch = "off"\n', {"SMP_FOOTSWITCH": "bogus"}),
    "bad SMP_LOG_LEVEL": ('footswitch = "off"\n', {"SMP_LOG_LEVEL": "bogus"}),
}


def station(tmp_path: Path, text: str, **extra: str) -> dict[str, str]:
    config = tmp_path / "config.toml"
    config.write_text(text)
    env = {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
           "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(config), **extra}
    return {k: v for k, v in env.items() if v}


@pytest.mark.parametrize("case", BROKEN)
def test_estop_with_a_broken_station_config_still_latches_the_pen(tmp_path, case):
    text, extra = BROKEN[case]
    env = station(tmp_path, text, **extra)
    with PenSimulator(seed=0, clock=VirtualClock(host_driven=True)) as sim:
        stopped = shell.smp(("estop", "--port", sim.url), env=env, cwd=ROOT)
        assert sim.firmware.state is FirmwareState.ESTOP, (stopped.returncode, stopped.stderr)
    assert stopped.returncode == 0, stopped.stderr
    assert f"E-stop latched on pen {sim.serial}" in stopped.stdout
    warnings = [line for line in stopped.stderr.splitlines()
                if line.startswith("warning:") and "smp config check" in line]
    assert len(warnings) == 1 and "E-stop went ahead" in warnings[0], stopped.stderr
    assert "NOT sent" not in stopped.stderr


def test_estop_needs_no_pedal_whatever_the_station_footswitch(tmp_path):
    env = station(tmp_path, 'footswitch = "required"\n')  # valid, but this pen has no pedal
    with PenSimulator(model=PenModel(seed=0, footswitch_fitted=False),
                      clock=VirtualClock(host_driven=True)) as sim:
        stopped = shell.smp(("estop", "--port", sim.url), env=env, cwd=ROOT)
        assert sim.firmware.state is FirmwareState.ESTOP, stopped.stderr
    assert stopped.returncode == 0 and "warning: the station" not in stopped.stderr


def test_estop_without_a_data_directory_says_the_detail_log_is_off(tmp_path):
    env = station(tmp_path, "bogus = 1\n", SMP_DATA_DIR="", XDG_DATA_HOME="",
                  HOME=str(tmp_path))  # the data directory would come from the broken file
    with PenSimulator(seed=0, clock=VirtualClock(host_driven=True)) as sim:
        stopped = shell.smp(("estop", "--port", sim.url), env=env, cwd=ROOT)
        assert sim.firmware.state is FirmwareState.ESTOP, stopped.stderr
    assert stopped.returncode == 0, stopped.stderr
    assert "detail log smp.log is off" in stopped.stderr
    assert "cannot be written" not in stopped.stderr  # not a second warning
    assert not (tmp_path / ".local").exists()


def test_estop_takes_the_readable_port_of_a_config_with_another_typo(tmp_path):
    with PenSimulator(seed=0, clock=VirtualClock(host_driven=True)) as sim:
        env = station(tmp_path, f'port = "{sim.url}"\nbogus = 1\n')
        stopped = shell.smp(("estop",), env=env, cwd=ROOT)
        assert sim.firmware.state is FirmwareState.ESTOP, stopped.stderr
    assert stopped.returncode == 0 and "unknown key 'bogus'" in stopped.stderr


@pytest.mark.parametrize("text, extra", [("port = 5\n", {}), ("[[[\n", {}),
                                         ("", {"SMP_PORT": " "})])
def test_estop_refuses_when_the_broken_part_is_the_port(tmp_path, text, extra):
    stopped = shell.smp(("estop",), env=station(tmp_path, text, **extra), cwd=ROOT)
    assert stopped.returncode == 2, stopped.stderr
    line = stopped.stderr.strip()
    assert line.startswith("error: E-stop NOT sent: no pen chosen") and "--port" in line, line
    assert len(stopped.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("port", [("--port", "pensim://?clock=virtual"), ()])
def test_monitor_starts_with_one_warning_with_or_without_port(tmp_path, port):
    env = station(tmp_path, "bogus = 1\n", SMP_SIM_CLOCK="virtual")
    watched = shell.smp(("monitor", "--once", *port), env=env, cwd=ROOT)
    assert watched.returncode == 0, watched.stderr
    assert "smp monitor — pen" in watched.stdout
    assert "unknown key 'bogus'" in watched.stderr and "monitor started" in watched.stderr


def test_monitor_refuses_a_broken_port_like_estop(tmp_path):
    watched = shell.smp(("monitor", "--once"), env=station(tmp_path, "port = 5\n"), cwd=ROOT)
    assert watched.returncode == 2 and "no pen chosen" in watched.stderr, watched.stderr
