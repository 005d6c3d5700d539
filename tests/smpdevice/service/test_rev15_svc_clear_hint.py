"""Review 15 S4: through the service, a refusal by a latched pen names a clear that reaches it.

README: errors give "commands you can copy". After `smp estop --service URL`, `smp calibrate
--service URL --auto` said `... or at the command line smp clear --port
'pensim://?clock=virtual'`: copied, that opened a fresh simulated pen ("has nothing latched",
exit 0) and the served pen stayed in estop. Now every `calibration.*` refusal by a latched pen
(begin, auto, a move mid-run) names `smp clear --service URL` at the URL the client connected
to, and that command, run as printed (with the reason a clear needs), clears the served pen. At
the station the controller's own hint still names its port.
A real service on a virtual-time simulated pen, real sockets, the command in-process."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from smpdevice.control import PenController, State, StateError
from smpdevice.service.client import ServiceError, SyncServiceClient
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice import shell
from tests.smpdevice.virtual_time import virtual_sim

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "SMP_DATA_DIR": str(tmp_path / "data"),
            "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml"),
            "COLUMNS": "200"}


@pytest.fixture
def service(env) -> Iterator[ServiceHandle]:
    with ServiceHandle(ServiceOptions(port="pensim://?clock=virtual", listen="127.0.0.1:0",
                                      data_dir=Path(env["SMP_DATA_DIR"]))) as handle:
        yield handle


def printed_clear(text: str) -> list[str]:
    found = re.search(r"(smp clear [^;(]*?)(?: \(|;|$)", text)
    assert found, text
    return shlex.split(found.group(1))


def clear_as_printed(service: ServiceHandle, env: dict[str, str], text: str) -> None:
    words = printed_clear(text)
    assert words == ["smp", "clear", "--service", service.url], text
    done = shell.smp((*words[1:], "--yes", "--reason", "cause removed"), env=env, cwd=ROOT)
    assert done.returncode == 0 and "nothing latched" not in done.stdout, done.stdout
    assert service.pen.state is State.IDLE  # the clear reached the served pen


@pytest.mark.parametrize("guided", [False, True], ids=["auto", "guided"])
def test_calibrate_through_service_on_an_estopped_pen_names_a_clear_that_reaches_it(
        service, env, guided):
    stopped = shell.smp(("estop", "--service", service.url), env=env, cwd=ROOT)
    assert stopped.returncode == 0, stopped.stderr
    how = ("-t", "ana") if guided else ("--auto",)
    cal = shell.smp(("calibrate", "--service", service.url, *how), env=env, cwd=ROOT)
    assert cal.returncode == 2, cal.stderr
    assert "--port" not in cal.stderr, cal.stderr
    clear_as_printed(service, env, cal.stderr)


def test_a_move_refused_mid_run_by_an_estop_names_the_service_clear(service, env):
    with SyncServiceClient.connect(service.url, role="technician", name="ana",
                                   data_dir=Path(env["SMP_DATA_DIR"])) as svc:
        svc.drive(lease_ms=2000)
        svc.call("calibration.begin")
        svc.call("pen.estop")
        with pytest.raises(ServiceError) as refused:
            svc.call("calibration.move", actuator_mm=1.0)
        with pytest.raises(ServiceError) as auto:
            svc.call("calibration.auto", technician="ana")
    for exc in (refused.value, auto.value):
        assert "--port" not in str(exc) and "pen.clear_faults" in str(exc), exc
        assert (exc.data or {}).get("type") == "StateError", exc.data  # the API's kind
    clear_as_printed(service, env, str(refused.value))


def test_at_the_station_the_latched_refusal_still_names_the_pens_port():
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.estop()
        with pytest.raises(StateError) as refused:
            ctl.begin_calibration()
    text = str(refused.value)
    assert f"smp clear --port {shlex.quote(sim.url)}" in text and "clear_faults()" in text, text
    moved = refused.value.reached_by("--service", "unix:///run/smp.sock")
    assert "smp clear --service unix:///run/smp.sock" in str(moved), moved
    assert "--port" not in str(moved)
    plain = StateError("cannot arm while running; needs idle")
    assert plain.reached_by("--service", "x") is plain  # nothing latched: nothing to reword


@pytest.mark.parametrize("method, params", [
    ("pen.set_zone", {"zone": "crown"}), ("pen.arm", {}), ("pen.start", {})])
def test_every_pen_method_refused_by_a_latch_names_the_service_clear(service, env, method,
                                                                     params):
    """Not only calibration.*: any method refused by a latched pen (the service's error
    boundary rewords it), here pen.set_zone, pen.arm and pen.start after an E-stop."""
    with SyncServiceClient.connect(service.url, role="technician", name="ana",
                                   data_dir=Path(env["SMP_DATA_DIR"])) as svc:
        svc.drive(lease_ms=2000)
        svc.call("pen.estop")
        with pytest.raises(ServiceError) as refused:
            svc.call(method, **params)
    assert "--port" not in str(refused.value), refused.value
    assert "smp clear --service" in str(refused.value), refused.value
    clear_as_printed(service, env, str(refused.value))
