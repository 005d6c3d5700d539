"""`smp estop` and `smp clear` on a simulated pen that stays alive between commands."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.control import PenController
from tests.smpdevice.conftest import CROWN, true_calibration


@pytest.fixture
def sim(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    # on a clock the connected `smp` drives (docs/simulator.md "Virtual time"): a loaded
    # machine cannot starve the pen past a request's four tries, as on the wall clock
    with PenSimulator(seed=3, name="safety-cli", clock=VirtualClock(host_driven=True)) as s:
        yield s


def smp(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def wait_for_pen_state(sim: PenSimulator, name: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while sim.firmware.state.name != name:
        assert time.monotonic() < deadline, f"pen still {sim.firmware.state.name}"
        time.sleep(0.01)


def test_estop_latches_on_the_pen_and_names_the_way_back(sim):
    result = smp("estop", "--port", sim.url)
    assert result.exit_code == 0, result.output
    assert f"E-stop latched on pen {sim.serial}" in result.output
    assert f"release it: smp clear --port {sim.url}" in result.output
    wait_for_pen_state(sim, "ESTOP")


def test_clear_shows_asks_and_releases_an_estop(sim):
    assert smp("estop", "--port", sim.url).exit_code == 0
    declined = smp("clear", "--port", sim.url, stdin="n\n")
    assert declined.exit_code == 1 and "Nothing cleared." in declined.output
    assert "has an E-stop latched" in declined.output
    wait_for_pen_state(sim, "ESTOP")
    agreed = smp("clear", "--port", sim.url, stdin="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert "Cleared: pen" in agreed.output and "is idle" in agreed.output
    wait_for_pen_state(sim, "IDLE")


def test_clear_without_an_answer_clears_nothing(sim):
    assert smp("estop", "--port", sim.url).exit_code == 0
    result = smp("clear", "--port", sim.url, stdin="")
    assert result.exit_code == 1 and "Nothing cleared." in result.output
    wait_for_pen_state(sim, "ESTOP")


def test_clear_is_refused_while_the_cause_persists_then_works(sim):
    # The pen notices a missing cartridge when armed: arm it, pull the cartridge, let go.
    with PenController.connect(sim.url, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        sim.inject("cartridge_removed")
        wait_for_pen_state(sim, "FAULT")
    refused = smp("clear", "--port", sim.url, "--yes")
    assert refused.exit_code == 4, refused.output
    assert "has a fault latched" in refused.output and "CARTRIDGE_REMOVED" in refused.output
    assert "the cause is still present" in refused.output and "Nothing was cleared" in \
        refused.output
    assert f"then run again: smp clear --port {sim.url}" in refused.output
    assert "Traceback" not in refused.output
    wait_for_pen_state(sim, "FAULT")
    sim.clear("cartridge_removed")
    cleared = smp("clear", "--port", sim.url, "--yes")
    assert cleared.exit_code == 0, cleared.output
    wait_for_pen_state(sim, "IDLE")


def test_clear_on_a_healthy_pen_says_nothing_is_latched(sim):
    result = smp("clear", "--port", sim.url)
    assert result.exit_code == 0 and "has nothing latched" in result.output


def test_estop_of_an_unreachable_pen_says_it_was_not_sent(sim):
    result = smp("estop", "--port", "/dev/ttyNOPE")
    assert result.exit_code == 6
    assert "E-stop NOT sent" in result.output and "pen's own stop" in result.output


@pytest.mark.parametrize("command", ["estop", "clear"])
def test_estop_and_clear_need_a_port(sim, command):
    result = smp(command)
    assert result.exit_code == 2 and "no pen chosen" in result.output
