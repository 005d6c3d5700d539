"""The simulator's Python API refuses bad input when it is given, never later inside the tick
thread or a clock's advance: a scheduled fault's action (R02), a clock step (R05)."""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest

from firmware_protocol.codes import FirmwareState as S
from simulators import FaultSpecError, PenSimulator, VirtualClock
from simulators.faults import RandomFault, ScheduledFault


# ----------------------------------------------------------------------------- R02
@pytest.mark.parametrize("action", ["jamm", "JAM", "", "_random", "Stall", 3, None])
def test_a_scheduled_fault_with_no_known_action_is_refused_when_made(action) -> None:
    with pytest.raises(FaultSpecError, match="action") as err:
        ScheduledFault(0.5, action)
    assert "jam" in str(err.value) and "reconnect" in str(err.value)  # names the allowed ones


def test_an_upper_case_name_gets_a_hint() -> None:
    with pytest.raises(FaultSpecError, match="did you mean 'jam'"):
        ScheduledFault(0.5, "JAM")


def test_a_changed_item_is_checked_again_by_schedule_and_nothing_fires_later() -> None:
    item = ScheduledFault(0.5, "jam")
    item.action = "jamm"  # a dataclass can be changed after it was made
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        with pytest.raises(FaultSpecError, match="jamm"):
            sim.schedule(item)
        with pytest.raises(FaultSpecError, match="ScheduledFault"):
            sim.schedule("jam@0.5")  # type: ignore[arg-type]
        sim.advance(1.0)
        assert sim.firmware.state is S.IDLE and not sim.errors


def test_a_device_fault_member_and_a_link_event_are_taken() -> None:
    from simulators import DeviceFault

    assert ScheduledFault(1, DeviceFault.JAM).action == "jam"
    with PenSimulator(seed=1, clock=VirtualClock(),
                      schedule=[ScheduledFault(0.5, DeviceFault.PEDAL_UP, 0.8),
                                ScheduledFault(0.5, "stall", 0.8)]) as sim:
        sim.advance(0.6)
        assert not sim.pedal_down and sim.link.stalled(sim.clock.now())
        sim.advance(0.4)
        assert sim.pedal_down and not sim.link.stalled(sim.clock.now())


@pytest.mark.parametrize("kwargs", [{"link_faults": 5}, {"link_faults": {"drop_p": 0.1}},
                                    {"schedule": ScheduledFault(0.5, "jam")}])
def test_a_simulator_refuses_faults_of_the_wrong_type_instead_of_ignoring_them(kwargs) -> None:
    with pytest.raises(FaultSpecError, match=next(iter(kwargs))):
        PenSimulator(seed=1, clock=VirtualClock(), **kwargs)


@pytest.mark.parametrize("fault", ["stall", "jamm"])
def test_a_random_fault_takes_device_faults_only(fault) -> None:
    with pytest.raises(FaultSpecError, match="fault"):
        RandomFault(fault, 1.0)  # type: ignore[arg-type]


def test_inject_names_the_allowed_faults() -> None:
    with PenSimulator(seed=1, clock=VirtualClock()) as sim, \
            pytest.raises(ValueError, match="overcurrent"):
        sim.inject("JAM")


def _break_one_action(sim: PenSimulator, at_s: float) -> None:
    """What no API lets in any more: an event whose action raises when it fires (a bug)."""
    with sim._cond:
        sim._push(at_s, "no-such-action", (True, "test"))


def test_a_failing_action_on_a_virtual_clock_is_logged_and_the_clock_goes_on(caplog) -> None:
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        _break_one_action(sim, 0.5)
        with caplog.at_level(logging.ERROR, logger="simulators.sim"):
            sim.advance(1.0)  # no exception out of the clock
        assert sim.clock.now() == 1.0 and sim.firmware.state is S.IDLE
        assert len(sim.errors) == 1 and "no-such-action" in sim.errors[0]
        assert "no-such-action" in caplog.text


def test_a_failing_action_never_kills_the_real_time_thread() -> None:
    with PenSimulator(seed=1) as sim:  # real time: its own tick thread
        _break_one_action(sim, sim.clock.now())
        deadline = time.monotonic() + 30.0
        while not sim.errors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sim.errors, "the action never fired"
        ticks = sim.firmware.now_ms
        thread = next(t for t in threading.enumerate() if t.name == f"pensim-{sim.name}")
        while sim.firmware.now_ms <= ticks and time.monotonic() < deadline:
            time.sleep(0.01)  # the tick thread alone moves the firmware: nobody reads a port
        assert thread.is_alive() and sim.firmware.now_ms > ticks


# ----------------------------------------------------------------------------- R05
@pytest.mark.parametrize("dt_s", [math.nan, math.inf, -math.inf, -0.5, 10**400])
def test_advance_refuses_a_step_that_is_no_finite_non_negative_number(dt_s) -> None:
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        sim.advance(0.06)
        with pytest.raises(ValueError, match="dt_s"):
            sim.advance(dt_s)
        assert sim.clock.now() == 0.06  # untouched
        sim.advance(0.01)  # the pen goes on
        assert sim.firmware.state is S.IDLE


@pytest.mark.parametrize("dt_s", ["0.1", None, True])
def test_advance_refuses_what_is_no_number(dt_s) -> None:
    clock = VirtualClock()
    with pytest.raises(TypeError, match="dt_s"):
        clock.advance(dt_s)  # type: ignore[arg-type]
    assert clock.now() == 0.0


def test_an_int_step_is_taken() -> None:
    clock = VirtualClock()
    assert clock.advance(2) == 2.0


@pytest.mark.parametrize("start_s", [math.nan, math.inf])
def test_a_clock_cannot_start_at_a_non_finite_time(start_s) -> None:
    with pytest.raises(ValueError, match="start_s"):
        VirtualClock(start_s)


# ----------------------------------------------------------------------------- link faults
@pytest.mark.parametrize("field", [{"delay_s": math.nan}, {"drop_p": 2.0}, {"flip_p": -0.1},
                                   {"delay_in_s": math.inf}, {"drop_in": (300,)},
                                   {"split_gap_s": -1.0}, {"dup_p": True}])
def test_a_link_fault_config_out_of_range_is_refused_when_the_simulator_is_made(field) -> None:
    from simulators import LinkFaultConfig

    with pytest.raises(FaultSpecError, match=next(iter(field))):
        PenSimulator(seed=1, clock=VirtualClock(), link_faults=LinkFaultConfig(**field))


@pytest.mark.parametrize("call", ["drop_next_frames", "corrupt_next_frames",
                                  "duplicate_next_frames", "split_next_frames"])
@pytest.mark.parametrize("n", [-1, 1.5, math.nan])
def test_a_frame_count_must_be_a_whole_number_ge_0(call, n) -> None:
    """drop_next_frames(-1) used to drop every frame from then on."""
    with PenSimulator(seed=1, clock=VirtualClock()) as sim, \
            pytest.raises(FaultSpecError, match="n="):
        getattr(sim.link, call)(n)


@pytest.mark.parametrize("args", [(math.nan,), (0.0, math.nan), (0.0, -1.0)])
def test_a_stall_by_hand_needs_finite_times(args) -> None:
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        with pytest.raises(FaultSpecError):
            sim.link.stall(*args)
        assert not sim.link.stalled(0.0)


def test_an_inbound_delay_must_be_finite() -> None:
    with PenSimulator(seed=1, clock=VirtualClock()) as sim, \
            pytest.raises(FaultSpecError, match="delay_s"):
        sim.link.delay_inbound(math.nan)


@pytest.mark.parametrize("timeout_s", [math.nan, -1.0, "1"])
@pytest.mark.parametrize("call", ["read", "read_chunk", "read_chunks"])
def test_a_port_read_refuses_a_timeout_that_is_no_time(call, timeout_s) -> None:
    """read(10, nan) used to wait for ever, whatever came."""
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        port = sim.open_port()
        args = (10, timeout_s) if call == "read" else (timeout_s,)
        with pytest.raises(ValueError, match="timeout_s"):
            getattr(port, call)(*args)
        sim.advance(0.06)  # BOOTED comes; an infinite timeout is None: returns once it has
        assert port.read_chunk(math.inf)


@pytest.mark.parametrize("t_s", [math.nan, math.inf, "1"])
def test_the_pure_firmware_refuses_a_time_that_is_no_time(t_s) -> None:
    from simulators import PenFirmware, PenModel

    firmware = PenFirmware(PenModel(seed=1), VirtualClock())
    with pytest.raises(ValueError, match="t_s="):
        firmware.advance_to(t_s)
    firmware.advance_to(0.06)
    assert firmware.state is S.IDLE
