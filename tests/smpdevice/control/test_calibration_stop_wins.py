"""A stop wins over every calibration request already on its way (review 12a R01, R04, R05).

end_calibration, stop_spin() and a spin's own end are stops. A speed check or an actuator move
asked before such a stop is confirmed is refused at its turn, without sending anything: its
lease grant never clears the renewal hold the stop owns, and the needle never runs after the
stop. Before, a spin asked while end_calibration's stop was on its way granted the lease (the
stop's hold cleared: renewals went out) and ARMed and started the needle on the idle pen right
after the stop was confirmed.

On the simulator's virtual clock: `delay_type=` makes a request last on the wire, and
`queued_turns` holds the clock still while another is queued behind it, so the order is a
state, never a race.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol.codes import FirmwareState, MsgType
from smpdevice.control import PenController, State
from smpdevice.control.calibrating import SpinStopped
from smpdevice.control.states import StateError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.control.queued_turns import Queued, held_still, queue, until
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

LEASE_MS = 200
STARTS = (MsgType.SET_SETPOINTS, MsgType.LEASE_RENEW, MsgType.ARM, MsgType.NEEDLE_START)


def _connect(sim) -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=LEASE_MS,
                                 clock=sim.clock)


def _counts(sim, types=STARTS) -> dict[MsgType, int]:
    return {t: sim.firmware.executed[t] for t in types}


def _never_ran_after(sim, ended: threading.Event) -> list[float]:
    """The pen's clock steps at which the needle ran after `ended` was set."""
    ran: list[float] = []

    def watch(now_s: float) -> None:
        if ended.is_set() and sim.firmware.state is FirmwareState.RUNNING:
            ran.append(now_s)

    sim.clock.on_advance(watch)
    return ran


@pytest.mark.parametrize("asked", ["spin", "move"])
def test_a_start_asked_while_end_calibration_stops_is_refused_and_sends_nothing(asked):
    with (virtual_sim(seed=3, link_faults="delay_type=NEEDLE_STOP:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        pen.calibration_move(0.6)
        ended = threading.Event()
        ran = _never_ran_after(sim, ended)

        def end() -> None:
            pen.end_calibration(None)
            ended.set()

        with held_still(sim):
            ender = queue(pen, end)  # its NEEDLE_STOP on the wire: held there
            assert pen._lease_hold.is_set() and len(pen._eng.ops) == 1, ender.outcome
            before = _counts(sim)
            call = (lambda: pen.calibration_spin(150.0, 0.4)) if asked == "spin" \
                else (lambda: pen.calibration_move(1.5))
            start = queue(pen, call)
            # refused while the stop is on its way: the hold it owns stays set
            assert pen._lease_hold.is_set(), "a grant cleared the stop's renewal hold"
            assert start.outcome, "queued behind the stop instead of refused"
        outcome = start.result()
        assert isinstance(outcome, SpinStopped if asked == "spin" else StateError), outcome
        assert "is still on its way" in str(outcome), outcome
        assert ender.result() is None
        sim.time.sleep(0.5)
        assert pen.state is State.IDLE, pen.last_fault
        assert _counts(sim) == before, "a start frame reached the pen after the stop was asked"
        assert not ran, f"the needle ran {len(ran)} steps after end_calibration returned"
        assert sim.firmware.depth_cmd_um != 1500


def _move_on_the_wire(pen) -> Queued:
    """(Clock held still) a calibration_move whose SET_SETPOINTS stays on the wire: the next
    request queues behind it."""
    mover = queue(pen, lambda: pen.calibration_move(0.8))
    assert len(pen._eng.ops) == 1, mover.outcome
    return mover


def test_a_spin_queued_before_end_calibration_is_refused_at_its_turn():
    """The spin was built (queued behind a move) before end_calibration was asked: at its turn
    it is refused, so the pen never ARMs; end_calibration's stop follows."""
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        ended = threading.Event()
        ran = _never_ran_after(sim, ended)
        with held_still(sim):
            mover = _move_on_the_wire(pen)
            arms = sim.firmware.executed[MsgType.ARM]
            spinner = queue(pen, lambda: pen.calibration_spin(150.0, 0.4))
            assert len(pen._eng.ops) == 2, spinner.outcome  # queued, not refused at once

            def end() -> None:
                pen.end_calibration(None)
                ended.set()

            ender = queue(pen, end)
        spun = spinner.result()
        assert isinstance(spun, SpinStopped), spun
        assert "was asked after it" in str(spun), spun
        assert ender.result() is None
        mover.result()
        ended.set()
        sim.time.sleep(0.3)
        assert pen.state is State.IDLE, pen.last_fault
        assert sim.firmware.executed[MsgType.ARM] == arms, "the refused spin ARMed the pen"
        assert sim.firmware.executed[MsgType.NEEDLE_START] == 0
        assert not ran


def test_stop_spin_refuses_a_spin_queued_before_it_at_its_turn():
    """stop_spin() (the service's pen.stop) while a spin waits its turn: it never starts."""
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        with held_still(sim):
            mover = _move_on_the_wire(pen)
            spinner = queue(pen, lambda: pen.calibration_spin(150.0, 0.4))
            assert len(pen._eng.ops) == 2, spinner.outcome
            pen.stop_spin()
        spun = spinner.result()
        mover.result()
        assert isinstance(spun, SpinStopped), spun
        assert sim.firmware.executed[MsgType.ARM] == 1  # the move's own (armed, never started)
        assert sim.firmware.executed[MsgType.NEEDLE_START] == 0
        assert pen.state is State.CALIBRATING  # a spin's stop, not the calibration's end
        assert pen.calibration_spin(150.0, 0.4) > 0  # the next spin is not refused


def test_a_cancelled_spin_token_refuses_it_at_its_turn():
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        cancel = pen.spin_cancel()
        with held_still(sim):
            mover = _move_on_the_wire(pen)
            spinner = queue(pen, lambda: pen.calibration_spin(150.0, 0.4, cancel=cancel))
            assert len(pen._eng.ops) == 2, spinner.outcome
            cancel.set()
        assert isinstance(spinner.result(), SpinStopped)
        mover.result()
        assert sim.firmware.executed[MsgType.ARM] == 1  # the move's own: the spin's never
        assert sim.firmware.executed[MsgType.NEEDLE_START] == 0


def test_a_second_end_calibration_behind_the_first_sends_nothing_and_installs_nothing():
    """R12A-05: end_calibration(cal) queued behind another's stop: at its turn the controller
    is idle, so it is refused (StateError) before any frame, the pen's table is not written
    and the host does not install it (a caller installs it in idle, knowingly unwritten)."""
    with (virtual_sim(seed=3, link_faults="delay_type=NEEDLE_STOP:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        installed = pen.calibration
        cal = true_calibration(sim, technician="run")
        with held_still(sim):
            watchdog = queue(pen, lambda: pen.end_calibration(None))
            assert len(pen._eng.ops) == 1, watchdog.outcome
            writes = _counts(sim, (MsgType.CALIBRATION_WRITE, MsgType.RETRACT))
            second = queue(pen, lambda: pen.end_calibration(cal))
            assert len(pen._eng.ops) == 2, second.outcome
        assert watchdog.result() is None
        outcome = second.result()
        assert isinstance(outcome, StateError), outcome
        assert pen.state is State.IDLE
        assert pen.calibration is installed, "installed though end_calibration raised"
        after = _counts(sim, (MsgType.CALIBRATION_WRITE, MsgType.RETRACT))
        # the first's RETRACT only; no table write
        assert after[MsgType.CALIBRATION_WRITE] == writes[MsgType.CALIBRATION_WRITE]
        assert after[MsgType.RETRACT] == writes[MsgType.RETRACT] + 1
        assert "already idle" in str(outcome) and "nothing was sent" in str(outcome)


def test_a_spin_cut_short_by_end_calibration_is_not_a_measurement():
    """R12A-04: end_calibration from another thread (the service's dead-man rule) during a
    spin: SpinStopped, never a mean speed of a cut-short measurement."""
    with (virtual_sim(seed=3) as sim, _connect(sim) as pen):
        pen.begin_calibration()
        spinner = Queued(lambda: pen.calibration_spin(150.0, 30.0))
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, 2.0,
                            "the needle running")
        sim.time.sleep(0.5)
        pen.end_calibration(None)
        sim.time.wait_until(lambda: bool(spinner.outcome), 5.0, "the spin ending")
        outcome = spinner.result()
        assert isinstance(outcome, SpinStopped), f"answered {outcome!r} Hz"
        assert "end_calibration" in str(outcome) and "nothing was measured" in str(outcome)
        assert pen.state is State.IDLE


START_KINDS = st.sampled_from(["spin", "move", "given-up spin"])


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(START_KINDS, max_size=3), after=st.lists(START_KINDS, max_size=2))
def test_end_calibration_wins_over_every_start_queued_around_it(before, after):
    """Whatever spins and moves are queued before end_calibration (built, waiting their turn)
    or asked after it (while its stop is on its way): none sends a frame, no renewal goes out
    once the stop was asked, and the needle never runs."""
    with (virtual_sim(seed=3, link_faults="delay_type=SET_SETPOINTS:0.15") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        ended = threading.Event()
        ran = _never_ran_after(sim, ended)

        def start(kind: str) -> Queued:
            if kind == "move":
                return queue(pen, lambda: pen.calibration_move(1.2))
            cancel = pen.spin_cancel()
            queued = queue(pen, lambda: pen.calibration_spin(150.0, 0.4, cancel=cancel))
            if kind == "given-up spin":
                cancel.set()
            return queued

        def end() -> None:
            pen.end_calibration(None)
            ended.set()

        with held_still(sim):
            mover = _move_on_the_wire(pen)
            counts = _counts(sim)
            starts = [start(kind) for kind in before]
            ender = queue(pen, end)
            starts += [start(kind) for kind in after]
            assert len(pen._eng.ops) == 2 + len(before), "a start asked after the end queued"
        assert ender.result() is None
        for kind, queued in zip(before + after, starts, strict=True):
            outcome = queued.result()
            assert isinstance(outcome, SpinStopped if "spin" in kind else StateError), (
                kind, outcome)
        mover.result()
        sim.time.sleep(0.3)
        assert pen.state is State.IDLE, pen.last_fault
        sent = _counts(sim)
        counts[MsgType.SET_SETPOINTS] += 1  # the move on the wire: its own, sent before
        assert sent == counts, (before, after)
        assert not ran


def test_a_stop_asked_while_a_spin_arms_keeps_its_needle_start_off_the_wire():
    """stop_spin() while the spin's ARM is on the wire: its NEEDLE_START never goes out (the
    check runs before every step), the armed pen is disarmed, and the spin is SpinStopped."""
    # ARM delayed less than the shortest retransmission timeout (20 ms): held on the wire
    # while the clock is still, it then arrives before any resend could
    with (virtual_sim(seed=3, link_faults="delay_type=ARM:0.01") as sim,
          _connect(sim) as pen):
        pen.begin_calibration()
        with held_still(sim):
            spinner = queue(pen, lambda: pen.calibration_spin(150.0, 0.4))
            until(lambda: bool(pen._eng.ops) and pen._eng.ops[0].step.TYPE is MsgType.ARM,
                  "the spin's ARM on the wire")
            pen.stop_spin()
        assert isinstance(spinner.result(), SpinStopped)
        sim.time.sleep(0.2)
        assert sim.firmware.executed[MsgType.ARM] == 1
        assert sim.firmware.executed[MsgType.NEEDLE_START] == 0
        assert sim.firmware.state is FirmwareState.IDLE  # disarmed by the spin's own stop
        assert pen.state is State.CALIBRATING, pen.last_fault
