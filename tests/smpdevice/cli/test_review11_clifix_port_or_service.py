"""Review 11 (reva F11, SAFETY): a `--port` typed on the command line beats SMP_SERVICE from the
environment, for every command that takes both (README: "command-line option > environment
variable"); `--port` and `--service` both typed name two pens and are refused, exit 2, before
anything is reached. Before: `SMP_SERVICE=URL smp estop --port P` E-stopped the service's pen and
left the pen on P running.

The pens are the built-in simulator on virtual time; the service is a real `smp serve` in this
process on its own simulated pen (`PenSimulator`, another serial)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from smpdevice.control import State
from smpdevice.outcomes import ExitCode
from smpdevice.service.runner import ServiceHandle, ServiceOptions

ROOT = Path(__file__).resolve().parents[3]
PROFILE = str(ROOT / "examples" / "session1_base_density.yaml")
SCREENING = str(ROOT / "examples" / "screening_clear.yaml")
NOBODY = "ws://127.0.0.1:1/rpc"  # no service answers there: a command that used it would fail

pytestmark = pytest.mark.usefixtures("sim_virtual_time")


def smp(*args: str, service_env: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={"SMP_SERVICE": service_env})


@pytest.fixture
def served() -> Iterator[ServiceHandle]:
    # on a clock its service drives (as `pensim://?clock=virtual`): no wall-clock deadline
    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as sim, ServiceHandle(
            ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                           data_dir=Path(os.environ["SMP_DATA_DIR"]))) as handle:
        yield handle


def test_estop_with_smp_service_exported_stops_the_pen_named_by_port(served):
    """The case seen live: the E-stop must reach the pen on --port, and the service's pen is
    not touched."""
    result = smp("estop", "--port", "pensim://", service_env=served.url)
    assert result.exit_code == 0, result.output
    assert "E-stop latched on pen SMP-" in result.stdout
    assert "through the service" not in result.stdout
    assert served.pen.state is not State.ESTOP


# Each command that takes --port and --service, as a run on the port that needs no setup, and
# what it prints when it reached the pen on that port.
ON_THE_PORT = {
    "estop": (["estop"], "E-stop latched on pen SMP-"),
    "info": (["info"], "Pen SMP-"),
    "clear": (["clear", "--yes"], "has nothing latched"),
    "monitor": (["monitor", "--once"], "SMP-"),
    "calibrate": (["calibrate", "--auto"], "Saved to"),
    "run": (["run", PROFILE, "-t", "ana", "--screening", SCREENING],
            "has no calibration. Calibrate it first: smp calibrate --port pensim:// --auto"),
    "resume": (["run", "--resume", "S0000", "-t", "ana", "--screening", SCREENING],
               "the station's pass logs"),
}


@pytest.mark.parametrize("name", sorted(ON_THE_PORT))
def test_an_explicit_port_beats_smp_service(name):
    words, reached = ON_THE_PORT[name]
    result = smp(*words, "--port", "pensim://", service_env=NOBODY)
    assert NOBODY not in result.output, result.output
    assert reached in result.output, (result.exit_code, result.output)


def test_a_run_with_smp_service_exported_plays_on_the_port():
    assert smp("calibrate", "--port", "pensim://", "--auto").exit_code == 0
    result = smp("run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING,
                 service_env=NOBODY)
    assert result.exit_code == ExitCode.OK, result.output
    assert "through the service" not in result.stdout
    assert "checked against the built-in envelope" in result.stdout


@pytest.mark.parametrize("name", sorted(ON_THE_PORT))
def test_port_and_service_both_typed_are_refused_as_two_targets(name):
    words, _reached = ON_THE_PORT[name]
    result = smp(*words, "--port", "pensim://", "--service", NOBODY)
    assert result.exit_code == ExitCode.USER_ERROR, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: --port pensim:// and --service {NOBODY} name two pens: give one of them "
        "(--port: the pen on that port; --service: the pen of that `smp serve`)"]


def test_smp_service_alone_still_chooses_the_service():
    """Without --port the environment's service is used, before SMP_PORT (as before)."""
    result = CliRunner().invoke(main, ["estop"],
                                env={"SMP_PORT": "pensim://", "SMP_SERVICE": NOBODY})
    assert result.exit_code == ExitCode.LINK_LOST, result.output
    assert f"E-stop NOT sent: the service at {NOBODY} cannot be reached" in result.stderr


def test_a_typed_service_beats_smp_port(served):
    result = CliRunner().invoke(main, ["info", "--service", served.url],
                                env={"SMP_PORT": "pensim://", "SMP_SERVICE": None})
    assert result.exit_code == 0, result.output
    assert f"(through the service at {served.url})" in result.stdout
