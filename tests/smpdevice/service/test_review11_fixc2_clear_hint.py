"""REV2B R7: a session refused by the service because its pen is latched (fault, E-stop)
tells the client to clear it through the service, at the URL that client reached it at
(`smp clear --service unix://...` or `ws://HOST:PORT/rpc`), and that command, run as printed,
clears the service's pen. Before, the hint was `smp clear --port <the service's own port>`:
busy (the service holds it) for a serial pen, and for `pensim://` a fresh simulated pen with
nothing latched ("nothing latched": the technician believed the pen was cleared).
A real service on a virtual-time simulated pen, real sockets."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator

import pytest
import yaml
from click.testing import CliRunner

from simulators import PenSimulator
from smpdevice.cli import main as smp_main
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle

from .conftest import WAIT_S, connect, run, service_with_held_leases, wait_until
from .test_service_resume import faulted_session
from .virtual_service import CLEAR, PROFILE


@pytest.fixture
def sim(vsim) -> PenSimulator:
    return vsim


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    with service_with_held_leases(sim, data_dir) as handle:
        yield handle


def printed_clear(message: str) -> list[str]:
    assert "clear it: " in message, message
    return shlex.split(message.split("clear it: ", 1)[1].splitlines()[0])


def url_of(service: ServiceHandle, unix: bool) -> str:
    return f"unix://{service.socket_path}" if unix else service.url


def clear_as_printed(service: ServiceHandle, words: list[str]) -> None:
    """Run the printed command (a technician's --yes and --reason added), then the service's
    pen must be idle: the command reached it."""
    result = CliRunner().invoke(smp_main, [*words[1:], "--yes", "--reason", "cause removed"])
    assert result.exit_code == 0, result.output
    assert "nothing latched" not in result.output, result.output
    deadline = time.monotonic() + WAIT_S
    while service.pen.state is not State.IDLE:  # condition: the clear reached the served pen
        assert time.monotonic() < deadline, service.pen.state
        time.sleep(0.01)


@pytest.mark.parametrize("unix", [True, False], ids=["unix", "ws"])
def test_session_run_on_a_latched_pen_names_the_service_the_client_reached(service, unix):
    async def main() -> tuple[str, str]:
        op = await connect(service, unix=unix)
        await op.estop()
        await wait_until(lambda: service.pen.state is State.ESTOP, what="E-stop")
        await op.drive(lease_ms=1000)
        with pytest.raises(ServiceError) as refused:
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana")
        await op.close()
        return str(refused.value), (refused.value.data or {}).get("type", "")

    text, kind = run(main())
    assert kind == "PenNotIdle" and "must be idle" in text, text
    assert printed_clear(text) == ["smp", "clear", "--service", url_of(service, unix)]
    clear_as_printed(service, printed_clear(text))


def test_session_resume_on_a_latched_pen_names_the_service(service, sim):
    async def main() -> str:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR, unix=True)
        sid = (await faulted_session(service, sim, op, viewer))["session_id"]
        with pytest.raises(ServiceError) as refused:  # the jam is latched
            await op.call("session.resume", session_id=sid, technician="bo")
        await op.close()
        await viewer.close()
        return str(refused.value)

    text = run(main())
    assert printed_clear(text) == ["smp", "clear", "--service", url_of(service, True)]
    sim.clear("jam")  # the cause removed
    clear_as_printed(service, printed_clear(text))


def test_at_the_station_the_hint_still_names_the_port(sim):
    """The same check at the pen's own port (no service): `--port` and that port."""
    from smpdevice.control import PenController
    from smpdevice.errors import SmpError
    from smpdevice.sessions.preflight import PenNotIdle, preflight
    from smpdevice.sessions.profiles import parse_profile
    from tests.smpdevice.conftest import true_calibration

    with PenController.connect(sim.url) as pen:
        pen.set_calibration(true_calibration(sim))
        pen.estop()
        profile = parse_profile(yaml.safe_load(PROFILE), pen.zones, pen_limits=pen.pen_limits())
        with pytest.raises(PenNotIdle) as refused:
            preflight(pen, profile, "ana")
    assert isinstance(refused.value, SmpError)
    assert printed_clear(str(refused.value)) == ["smp", "clear", "--port", sim.url]
