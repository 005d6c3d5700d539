"""Overlapping fault windows each hold their own cause (R01), and a stall loses whatever is in
flight when it begins, both ways (R06): docs/simulator.md "Faults"."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol import encode
from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import MsgType, NackReason
from simulators import PenSimulator, VirtualClock
from simulators.faults import ScheduledFault
from simulators.testing import PenHost


def _at(sim: PenSimulator, t_s: float) -> None:
    sim.advance(t_s - sim.clock.now())


def _pen(spec: str, seed: int = 2) -> PenSimulator:
    return PenSimulator(seed=seed, clock=VirtualClock(), link_faults=spec)


# ----------------------------------------------------------------------------- R01
def test_a_jam_window_holds_its_cause_through_an_overlapping_shorter_one() -> None:
    with _pen("jam@1-3,jam@2-2.5") as sim:
        _at(sim, 0.06)
        host = PenHost(sim.open_port())
        host.start_needle(lease_ms=2000)
        _at(sim, 2.7)
        assert sim.firmware.state is S.FAULT
        assert getattr(host.request(m.ClearFaults()), "reason", None) \
            == NackReason.CONDITION_ACTIVE
        _at(sim, 3.1)  # jam@1-3 ends: now the cause is gone
        assert isinstance(host.request(m.ClearFaults()), m.Ack)


def test_a_random_occurrence_does_not_end_a_scheduled_window() -> None:
    with _pen("pedal_up@1-20,pedal_up~2") as sim:
        _at(sim, 1.01)
        down = []
        while sim.clock.now() < 19.9:
            sim.advance(0.05)
            down.append(sim.pedal_down)
        assert not any(down)
        after = []
        while sim.clock.now() < 25:  # the window is over: only random lifts hold it up now
            sim.advance(0.05)
            after.append(sim.pedal_down)
        assert any(after)


def test_overlapping_random_occurrences_each_hold_their_cause_for_its_whole_hold() -> None:
    """pedal_up~10: a lift every 0.1 s on average, each held 0.5 s, so the pedal is down only
    where no lift began in the last 0.5 s (about e**-5 of the time); an occurrence's end
    pressing the pedal while a later one holds it up would leave it down far more often."""
    with _pen("pedal_up~10", seed=5) as sim:
        down = 0
        for _ in range(2000):
            sim.advance(0.01)
            down += sim.pedal_down
        assert down < 100, f"pedal down in {down} of 2000 samples"


def test_an_item_given_as_scheduled_fault_holds_its_own_cause_too() -> None:
    schedule = [ScheduledFault(1.0, "pedal_up", 3.0), ScheduledFault(2.0, "pedal_up", 2.5)]
    with PenSimulator(seed=1, clock=VirtualClock(), schedule=schedule) as sim:
        _at(sim, 2.7)
        assert not sim.pedal_down


def test_a_hand_press_removes_every_cause_and_a_window_end_then_changes_nothing() -> None:
    with _pen("pedal_up@1-3,pedal_up@2-4") as sim:
        _at(sim, 2.2)
        sim.press_pedal()  # by hand: pressed now, whatever the windows say
        assert sim.pedal_down
        sim.release_pedal()
        _at(sim, 3.5)  # pedal_up@1-3 ended; the hand's cause holds it up
        assert not sim.pedal_down
        sim.press_pedal()
        _at(sim, 4.5)
        assert sim.pedal_down


def test_overlapping_stall_windows() -> None:
    with _pen("stall@1-3,stall@2-2.5") as sim:
        _at(sim, 2.7)
        assert sim.link.stalled(sim.clock.now())
        _at(sim, 3.1)
        assert not sim.link.stalled(sim.clock.now())


def test_overlapping_disconnect_windows() -> None:
    with _pen("disconnect@1-3,disconnect@2-2.5") as sim:
        _at(sim, 2.7)
        assert not sim.connected
        _at(sim, 3.1)
        assert sim.connected


def test_a_reconnect_event_ends_every_disconnect_under_way() -> None:
    with _pen("disconnect@1-3,reconnect@2") as sim:
        _at(sim, 2.1)
        assert sim.connected
        generation = sim.generation
        _at(sim, 3.1)  # the window's end finds its cause gone: no second reconnect
        assert sim.connected and sim.generation == generation


_windows = st.lists(st.tuples(st.integers(1, 24), st.integers(1, 12)), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows=_windows, kind=st.sampled_from(["pedal_up", "stall", "disconnect"]))
def test_a_cause_is_present_exactly_inside_the_union_of_its_windows(windows, kind) -> None:
    """For any windows of one kind (in tenths of a second), at every half-tenth between their
    edges the cause is present if and only if some window covers that moment."""
    spans = [(start / 10, (start + length) / 10) for start, length in windows]
    spec = ",".join(f"{kind}@{t1:g}-{t2:g}" for t1, t2 in spans)
    with _pen(spec) as sim:
        for tenth in range(1, 80):
            t_s = tenth / 10 + 0.05
            _at(sim, t_s)
            inside = any(t1 < t_s < t2 for t1, t2 in spans)
            present = {"pedal_up": not sim.pedal_down,
                       "stall": sim.link.stalled(sim.clock.now()),
                       "disconnect": not sim.connected}[kind]
            assert present == inside, (spec, t_s)


# ----------------------------------------------------------------------------- R06
def test_a_late_host_frame_in_flight_when_a_stall_begins_is_never_executed() -> None:
    with _pen("delay_type=SET_SETPOINTS:0.6,stall@1-2", seed=1) as sim:
        _at(sim, 0.06)
        host = PenHost(sim.open_port())
        host.send(m.SetSetpoints(1000, 10000, 1000, 100000))  # arrives at 0.66
        _at(sim, 0.9)
        assert sim.firmware.executed[MsgType.SET_SETPOINTS] == 1
        host.send(m.SetSetpoints(900, 10000, 1000, 100000))  # due at 1.5: inside the stall
        _at(sim, 1.6)
        host.send(m.SetSetpoints(800, 10000, 1000, 100000))  # written inside: due at 2.2
        _at(sim, 3.0)
        assert sim.firmware.executed[MsgType.SET_SETPOINTS] == 1
        assert sim.link.stats["stalled_bytes_in"] > 0
        host.send(m.SetSetpoints(700, 10000, 1000, 100000))  # after the stall: passes
        _at(sim, 3.7)
        assert sim.firmware.executed[MsgType.SET_SETPOINTS] == 2


def test_no_delayed_pen_frame_reaches_the_host_inside_a_stall() -> None:
    with _pen("delay=0.5,stall@1-2", seed=1) as sim:
        _at(sim, 0.06)
        host = PenHost(sim.open_port())
        _at(sim, 1.0)
        host.poll()
        seen = len(host.frames)
        _at(sim, 2.0)
        host.poll()
        assert len(host.frames) == seen  # neither in flight at 1 s nor sent during it
        _at(sim, 2.6)
        host.poll()
        assert len(host.frames) > seen  # both resume after


def test_a_stall_by_hand_loses_what_is_in_flight_too() -> None:
    with PenSimulator(seed=1, clock=VirtualClock(), link_faults="delay=0.5") as sim:
        port = sim.open_port()
        _at(sim, 0.06)
        port.write(encode(m.SetTelemetryRate(0), 1))
        _at(sim, 1.0)
        port.read(1 << 16, 0)
        port.write(encode(m.Ping(7), 2))  # the PONG is due at 1.5
        sim.link.stall(sim.clock.now(), duration_s=0.2)  # over by 1.2
        _at(sim, 2.0)
        assert port.read(1 << 16, 0) == b""
        port.write(encode(m.Ping(8), 3))
        _at(sim, 2.6)
        assert port.read(1 << 16, 0) == encode(m.Pong(8), 3)
