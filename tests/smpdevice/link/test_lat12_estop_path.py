"""The E-stop's path after session 12's latency work (docs/performance.md, "Session 12").

The ESTOP now goes on the wire before the controller's holds are set, and the holds are set in
the same hold of the link's write lock, right after the write: no frame can go out between the
ESTOP and them. If the ESTOP cannot be written, the holds are set all the same. The pen event's
log line reads its names from tables, held equal to the enums' here.

Real controller against the simulator on virtual time (pty where the reader thread matters).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pytest

from firmware_protocol.codes import EventCode, Fault, FirmwareState
from firmware_protocol.messages import EStop, LeaseRenew
from smpdevice.control import PenController, State
from smpdevice.control.news import _EVENT_NAMES, _LATCHED, _STATE_NAMES, _fault_names
from smpdevice.control.states import EStopUnconfirmed
from tests.smpdevice.conftest import run_needle, true_calibration
from tests.smpdevice.virtual_time import virtual_sim


@contextlib.contextmanager
def needle_running() -> Iterator[PenController]:
    """A simulated pen on virtual time, its needle running under a controller."""
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        run_needle(pen)
        yield pen


def test_the_holds_are_set_under_the_write_lock_right_after_the_estop_is_written():
    with needle_running() as pen:
        link = pen.link
        assert link is not None
        seen: list[tuple[bool, int, bool, bool]] = []
        hold = pen._hold_estop

        def spy() -> None:
            seen.append((link.holding_writes().locked(), link.estops_written,
                         pen.lease_needed(), pen.motion_refused() is None))
            hold()

        written_before = link.estops_written
        pen._hold_estop = spy  # type: ignore[method-assign]
        pen.estop()
        # once, inside the write lock, after the ESTOP counted as written, before the holds
        assert seen == [(True, written_before + 1, True, True)]
        assert not pen.lease_needed()
        assert pen.motion_refused() is not None
        assert pen.state is State.ESTOP
        sent = [type(m) for (_t, d, _s, m) in link.history if d == "tx"]
        assert EStop in sent and LeaseRenew not in sent[sent.index(EStop) + 1:]


def test_an_estop_that_cannot_be_written_still_holds_lease_and_motion():
    with needle_running() as pen:
        link = pen.link
        assert link is not None

        def broken_write(data: bytes) -> int:
            raise OSError("the cable is gone")

        link.port.write = broken_write  # type: ignore[method-assign]
        with pytest.raises(EStopUnconfirmed):
            pen.estop()
        assert pen._estop_hold and pen._lease_hold.is_set()
        assert not pen.lease_needed()
        assert pen.motion_refused() is not None


def test_an_estop_interrupted_before_its_write_still_holds_lease_and_motion():
    with needle_running() as pen:

        def interrupted(link):
            raise KeyboardInterrupt  # Ctrl-C between the claim of the port and the write

        pen._shared_estop = interrupted  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            pen.estop()
        assert pen._estop_hold and pen._lease_hold.is_set()
        assert not pen.lease_needed()


@pytest.mark.realtime
def test_estop_over_a_pty_mid_pass_pokes_the_reader_once_and_reads_its_own_ack(pen_sim_pty):
    sim, path = pen_sim_pty
    # the pen's longest lease: a loaded machine's stall before the start must not lapse it
    # (seen in CI: NEEDLE_START refused, BAD_STATE); the E-stop's read path is what is tested
    with PenController.connect(path, calibration=true_calibration(sim), lease_ms=2000) as pen:
        run_needle(pen)
        link = pen.link
        assert link is not None
        readers: list[threading.Thread] = []
        dispatch = link._dispatch

        def spy(frame) -> None:
            if frame.seq and frame.seq in link._waiters:
                readers.append(threading.current_thread())
            dispatch(frame)

        link._dispatch = spy  # type: ignore[method-assign]
        pen.estop()
        assert pen.state is State.ESTOP
        # the caller read the ESTOP's ACK itself (no hand-off), whatever the reader did
        assert readers == [threading.current_thread()]
        assert link.reading_depth() == 0  # the port's reading role was given back


def test_the_log_names_tables_equal_the_enums():
    assert {int(c): EventCode(int(c)).name for c in EventCode} == _EVENT_NAMES
    assert {int(s): FirmwareState(int(s)).name for s in FirmwareState} == _STATE_NAMES
    # the events acted on at once; BOOTED too: a reboot latches (review 19, a brownout)
    assert {int(EventCode.FAULT_LATCHED), int(EventCode.ESTOP_LATCHED),
            int(EventCode.BOOTED)} == _LATCHED


def test_fault_names_equal_the_enums_for_every_16_bit_value_and_are_fresh_lists():
    for value in range(1 << 16):
        assert _fault_names(value) == Fault(value).names, value
    first = _fault_names(int(Fault.JAM))
    first.append("mutated by a log processor")
    assert _fault_names(int(Fault.JAM)) == ["JAM"]
