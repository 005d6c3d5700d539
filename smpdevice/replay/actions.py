"""What a replay does on its controller for each recorded input (`smpdevice.replay.inputs`):
the technician's E-stop, clear and reconnect, the service's stop and disarm, a client's
disarm; each is run in a thread of its own by `ReplayInputs.point`, as live it came from
another thread.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from smpdevice.errors import SmpError
from smpdevice.replay.inputs import held_difference

if TYPE_CHECKING:
    from smpdevice.replay.inputs import Input
    from smpdevice.replay.pen import ReplayPen

CLEAR_WAIT_S = 2.0  # virtual: for the handshake's report of the latch a recorded clear cleared


def bind_actions(pen: Any, pen_side: ReplayPen, clock: Any) -> None:
    """Give `pen_side` (and its inputs, if the recording keeps them) the replayed controller
    `pen`'s actions."""
    from smpdevice.control import State
    from smpdevice.link.clock import timebase_for

    def press_estop() -> None:
        with contextlib.suppress(SmpError):
            pen.estop()

    def press_held_estop(item: Input) -> None:  # pressed live while the link was down
        try:  # once the replayed controller lost it too (it learns of a loss in its thread)
            pen.wait_for_state(State.DISCONNECTED, State.CONNECTING, timeout_s=CLEAR_WAIT_S)
        except SmpError:  # it kept the link: pressed now, it would latch and send an ESTOP
            state = pen.state.value  # (or, past the replay's end, do nothing it compares)
            pen_side.differ(held_difference(item, f"the replayed controller {state}: it kept "
                                                  "its link, the E-stop is not pressed"))
            return
        press_estop()

    def stop_pen() -> None:  # what the service does on `session.stop`
        from smpdevice.service.deadman import stop_and_disarm

        stop_and_disarm(pen, "replayed input")

    def disarm_pen() -> None:  # a client's `pen.disarm` while the session was open
        with contextlib.suppress(SmpError):  # refused live too (not armed): refused here
            pen.disarm()

    def clear_faults() -> None:  # a technician's clear while the session was open
        with contextlib.suppress(SmpError):  # of the latch it saw live (the pen's
            pen.wait_for_state(State.FAULT, State.ESTOP, timeout_s=CLEAR_WAIT_S)
        with contextlib.suppress(SmpError):  # fault event, delivered as it is sent)
            pen.clear_faults()

    def reconnect() -> None:  # the technician's `r`, the service's reconnect
        timebase, connected = timebase_for(clock), False
        try:
            with timebase.participant():  # its work takes no virtual time, as live
                timebase.count(pending=-1)  # (held since its point: `plugging_in`)
                with contextlib.suppress(SmpError):  # once it lost the link
                    pen.wait_for_state(State.DISCONNECTED, timeout_s=CLEAR_WAIT_S)
                with contextlib.suppress(SmpError):  # a failed attempt: its state
                    pen.reconnect()                   # changes are compared
                    connected = True
        finally:
            pen_side.reconnect_done(connected)

    pen_side.press_estop = press_estop
    pen_side.controller_state = lambda: pen.state.value
    inputs = pen_side.inputs
    if inputs is not None:
        inputs.press_estop, inputs.press_held_estop = press_estop, press_held_estop
        inputs.stop_pen, inputs.clear_faults, inputs.reconnect = stop_pen, clear_faults, reconnect
        inputs.disarm_pen = disarm_pen


def plugging_in(pen_side: ReplayPen, clock: Any) -> Any:
    """The recorded pen plugged in again at a recorded reconnect (`ReplayPen.plug_in`), and
    virtual time held from that point until the reconnect's thread is at work: a starved
    thread must not let the session's wait between passes run out first."""
    from smpdevice.link.clock import timebase_for

    def plug_in(item: Any) -> None:
        pen_side.plug_in(item)
        timebase_for(clock).count(pending=1)  # released by the reconnect's thread

    return plug_in
