"""pytest plugin (entry point `pytest11: pensim`): fixtures that start a simulated pen.

    def test_arm_needs_setpoints(pen_sim, pen_host):        # virtual clock, booted, IDLE
        reply = pen_host.request(m.Arm())
        assert reply.reason == NackReason.NO_SETPOINTS
        pen_sim.advance(0.5)                                 # half a second of pen time

    def test_my_controller(pen_sim_url):                     # real time: "pensim://penN"
        port = serial.serial_for_url(pen_sim_url, timeout=0.1)

    @pytest.mark.pensim(seed=7, faults="drop=0.01,jam@1.0")  # options for this test's pen
    def test_under_faults(pen_sim): ...

Fixtures: pen_clock (VirtualClock), pen_sim, pen_host (simulators.testing.PenHost on pen_sim),
pen_sim_realtime, pen_sim_url, pen_sim_pty (sim, "/dev/pts/N"), pen_sim_tcp
(sim, "socket://127.0.0.1:PORT"). Every simulator is closed after its test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.clock import VirtualClock
from simulators.pen_model import PenModel
from simulators.reach import PtyBridge, TcpBridge
from simulators.sim import PenSimulator
from simulators.testing import PenHost

BOOT_S = 0.06


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pensim(seed=0, faults=None, baud=None, **model): options of the test's "
        "simulated pen (PenModel fields are accepted as keywords)",
    )


def _options(request: pytest.FixtureRequest) -> dict:
    marker = request.node.get_closest_marker("pensim")
    return dict(marker.kwargs) if marker else {}


def _make(request: pytest.FixtureRequest, clock: VirtualClock | None) -> PenSimulator:
    opts = _options(request)
    seed = opts.pop("seed", 0)
    faults = opts.pop("faults", None)
    baud = opts.pop("baud", None)
    model = PenModel(seed=seed, **opts)
    return PenSimulator(model=model, clock=clock, link_faults=faults, baud=baud)


@pytest.fixture
def pen_clock() -> VirtualClock:
    """The virtual clock `pen_sim` runs on; advance it (or pen_sim) to move time."""
    return VirtualClock()


@pytest.fixture
def pen_sim(request: pytest.FixtureRequest, pen_clock: VirtualClock) -> Iterator[PenSimulator]:
    """A simulated pen on a virtual clock, already booted (IDLE). Nothing moves until advanced."""
    sim = _make(request, pen_clock)
    sim.advance(BOOT_S)
    yield sim
    sim.close()


@pytest.fixture
def pen_host(pen_sim: PenSimulator) -> Iterator[PenHost]:
    """A bare protocol host on `pen_sim` (send, request, telemetry, events)."""
    port = pen_sim.open_port()
    yield PenHost(port)
    port.close()


@pytest.fixture
def pen_sim_realtime(request: pytest.FixtureRequest) -> Iterator[PenSimulator]:
    """A simulated pen in real time (a daemon thread ticks it). It boots in ~50 ms."""
    sim = _make(request, None)
    yield sim
    sim.close()


@pytest.fixture
def pen_sim_url(pen_sim_realtime: PenSimulator) -> str:
    """`pensim://NAME` of a real-time pen: `serial.serial_for_url(pen_sim_url)` reaches it."""
    return pen_sim_realtime.url


@pytest.fixture
def pen_sim_pty(pen_sim_realtime: PenSimulator) -> Iterator[tuple[PenSimulator, str]]:
    """(simulator, pty device path): open the path with `serial.Serial(path)`."""
    with PtyBridge(pen_sim_realtime) as bridge:
        yield pen_sim_realtime, bridge.path


@pytest.fixture
def pen_sim_tcp(pen_sim_realtime: PenSimulator) -> Iterator[tuple[PenSimulator, str]]:
    """(simulator, "socket://127.0.0.1:PORT"): open it with `serial.serial_for_url`."""
    with TcpBridge(pen_sim_realtime) as bridge:
        yield pen_sim_realtime, bridge.url
