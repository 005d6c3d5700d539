"""Review 18: the simulator's on-demand link calls are checked when called, as a fault spec
is (FaultSpecError, a ValueError, naming the argument): junk given as a count, or an inbound
filter code no host->pen frame has, is refused, never met later as a lost link or a filter
that drops nothing."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import MsgType
from simulators import PenSimulator, VirtualClock
from simulators.link_faults import FaultSpecError


@pytest.fixture
def sim():
    with PenSimulator(seed=1, clock=VirtualClock()) as s:
        yield s


@pytest.mark.parametrize("data", [16, "junk", 1.5, [1, 2]])
def test_junk_that_is_not_bytes_is_refused_when_called(sim, data):
    with pytest.raises(FaultSpecError, match="data=.* is refused: give the junk as bytes"):
        sim.link.inject_junk(data)


@pytest.mark.parametrize("n_bytes", [-1, 1.5, True, float("nan"), 1 << 20])
def test_a_bad_junk_count_is_refused(sim, n_bytes):
    with pytest.raises(FaultSpecError, match="n_bytes="):
        sim.link.inject_junk(n_bytes=n_bytes)


def test_junk_given_rightly_reaches_the_host_and_the_link_lives(sim):
    port = sim.open_port()
    sim.link.inject_junk(bytearray(b"\x00\xaa"))
    sim.link.inject_junk(n_bytes=16)
    sim.advance(0.06)  # boots: EVENT BOOTED is written to the host after the junk
    assert len(port.read(4096, 0)) > 18


@pytest.mark.parametrize("call", ["drop_inbound", "delay_inbound"])
@pytest.mark.parametrize("code", [0x41, 999, -1, "ESTOP", 1.0, True],
                         ids=["ack_0x41", "999", "negative", "name", "float", "bool"])
def test_an_inbound_filter_refuses_a_code_no_host_frame_has(sim, call, code):
    args = (code,) if call == "drop_inbound" else (0.05, code)
    with pytest.raises(FaultSpecError, match=f"{call} type"):
        getattr(sim.link, call)(*args)
    assert sim.link.passthrough(sim.clock.now())  # nothing was set


def test_an_inbound_filter_takes_host_codes(sim):
    sim.link.drop_inbound(MsgType.ESTOP, int(MsgType.NEEDLE_STOP))
    sim.link.delay_inbound(0.05, MsgType.ARM)
    assert not sim.link.passthrough(sim.clock.now())


# Also seen by review 18: the simulator's own arguments are checked when given.

@pytest.mark.parametrize("kwargs, named", [
    (dict(name=5), "name=5"), (dict(name="a\nb"), "name="), (dict(seed="3"), "seed='3'"),
    (dict(seed=float("nan")), "seed=nan"), (dict(seed=1.5), "seed=1.5"),
    (dict(seed=True), "seed=True")])
def test_a_simulator_refuses_a_bad_name_or_seed_and_holds_nothing(kwargs, named):
    from simulators import sim as sim_module

    before = dict(sim_module._registry)
    with pytest.raises(ValueError, match=named):
        PenSimulator(clock=VirtualClock(), **kwargs)
    assert sim_module._registry == before  # nothing registered under a broken name
