"""A caller that gives up (its own limit, Ctrl-C) leaves nothing behind: its request never
reaches the pen later, a written NEEDLE_START is stopped, the port is read on, no decoded frame
is lost. A thread that reads and calls in again (a listener, a signal handler) keeps its role.

Over a real pty these run on wall time (marked `realtime`); none asserts a duration. The first
runs in-process on the simulator's virtual clock: its subject is the engine's queue, and the
start's own limit would otherwise cost 8 s of wall time.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from firmware_protocol import StreamDecoder
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.messages import Arm, IdentifyRequest, NeedleStart, SetSetpoints, Telemetry
from smpdevice.control import PenController, State
from smpdevice.errors import SmpError
from smpdevice.link import Operation
from smpdevice.link.wire import LinkTimeout
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import wait_until

GENEROUS_S = 10.0  # bounds a broken run only


def _count_sent(pen: PenController, kinds: tuple[type, ...], after: threading.Event) -> list:
    """Record each frame of `kinds` written once `after` is set."""
    sent: list = []
    link, send = pen.link, pen.link.send

    def spy(message, seq=None, estops_seen=None):
        if after.is_set() and isinstance(message, kinds):
            sent.append(message)
        return send(message, seq, estops_seen)

    link.send = spy  # type: ignore[method-assign]
    return sent


@pytest.mark.virtual_time  # the start's own limit (8 s) passes on the simulator's clock
def test_a_start_reported_as_timed_out_never_reaches_the_pen(sim):
    with PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=400,
                               clock=sim.clock) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        starts_before = sim.firmware.executed[MsgType.NEEDLE_START]
        gave_up = threading.Event()
        late = _count_sent(pen, (NeedleStart, Arm), gave_up)
        # a request nobody waits for, which the pen does not hear, holds the queue's head
        sim.link.drop_inbound(MsgType.IDENTIFY_REQUEST)
        blocker = Operation([IdentifyRequest()], attempts=10_000)
        with pen._engine._lock:
            pen._engine.submit(blocker)
        with pytest.raises(LinkTimeout, match="withdrawn before it was sent"):  # its own limit
            pen.start_needle()
        gave_up.set()
        sim.link.clear_inbound()  # the head completes; what was behind it would go out now
        sim.time.wait_until(blocker.future.done, GENEROUS_S)  # retransmitted on virtual time
        blocker.future.result()
        pen.set_setpoints(**CROWN)  # one more round trip: anything queued went out before it
        assert late == []
        assert sim.firmware.executed[MsgType.NEEDLE_START] == starts_before
        assert pen.state is not State.RUNNING


@pytest.mark.realtime
def test_ctrl_c_after_a_start_was_written_stops_the_needle(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        engine, link = pen._engine, pen.link
        wait = link.wait

        def ctrl_c_once_written(predicate, timeout_s, cond):
            head = next(iter(engine.ops), None)
            if head is not None and isinstance(head.step, NeedleStart):
                wait_until(sim, lambda: sim.firmware.state is FirmwareState.RUNNING, GENEROUS_S)
                raise KeyboardInterrupt  # the technician gives up
            return wait(predicate, timeout_s, cond)

        hook = link._reply_hook
        assert hook is not None

        def lose_the_start_reply(frame) -> bool:  # the pen applies it; its reply is lost
            head = next(iter(engine.ops), None)
            if head is not None and isinstance(head.step, NeedleStart) and frame.seq == head.seq:
                return True
            return hook(frame)

        link.set_reply_hook(lose_the_start_reply)
        link.wait = ctrl_c_once_written  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            pen.start_needle()
        link.wait = wait  # type: ignore[method-assign]
        link.set_reply_hook(hook)
        assert engine.ops == []  # withdrawn, not retransmitted
        wait_until(sim, lambda: sim.firmware.state is not FirmwareState.RUNNING, GENEROUS_S)
        assert pen.state is not State.RUNNING


@pytest.mark.realtime
def test_ctrl_c_during_the_write_hands_the_port_back(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim), telemetry_hz=50) as pen:
        pen.set_zone("crown")
        link = pen.link
        gate = link.gate
        fired = threading.Event()

        def ctrl_c_at_the_write(message):  # the motion gate runs inside `send`
            if (isinstance(message, SetSetpoints) and not fired.is_set()
                    and link._reading is threading.current_thread()):
                fired.set()
                raise KeyboardInterrupt
            return gate(message)

        link.gate = ctrl_c_at_the_write

        def caller() -> None:  # gives up on Ctrl-C and returns to its prompt
            end = time.monotonic() + GENEROUS_S
            while not fired.is_set() and time.monotonic() < end:
                with contextlib.suppress(KeyboardInterrupt):
                    pen.set_setpoints(**CROWN)

        worker = threading.Thread(target=caller)
        worker.start()
        worker.join(GENEROUS_S)
        link.gate = gate
        assert fired.is_set(), "the injection never fired"
        before = link.stats.telemetry_received
        wait_until(sim, lambda: link.stats.telemetry_received >= before + 20, GENEROUS_S)
        assert link._reading is not worker
        assert pen.state is not State.DISCONNECTED, pen.last_fault


@pytest.mark.realtime
def test_ctrl_c_while_a_caller_dispatches_loses_no_decoded_frame(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim), telemetry_hz=1000) as pen:
        pen.set_zone("crown")
        link = pen.link
        decoded: list[object] = []
        dispatched: set[int] = set()
        batch = [0]
        fired = threading.Event()
        dispatch = link._dispatch

        class CountingDecoder(StreamDecoder):
            def feed(self, data):
                frames = super().feed(data)
                decoded.extend(frames)  # kept alive: their ids stay unique
                batch[0] = len(frames)
                return frames

        def interrupted_dispatch(frame):
            dispatched.add(id(frame))
            if (not fired.is_set() and batch[0] > 1 and link._reading is threading.current_thread()
                    and threading.current_thread() is not link._reader):
                fired.set()  # the signal lands here, in the reading caller
                raise KeyboardInterrupt
            dispatch(frame)

        link.decoder = CountingDecoder()
        link._dispatch = interrupted_dispatch  # type: ignore[method-assign]
        end = time.monotonic() + 20
        while not fired.is_set() and time.monotonic() < end:
            with contextlib.suppress(KeyboardInterrupt, SmpError):
                pen.set_setpoints(**CROWN)
        assert fired.is_set(), "the injection never fired"
        mark = len(decoded)  # the batch the Ctrl-C cut is delivered by the next reader
        wait_until(sim, lambda: {id(f) for f in decoded[:mark]} <= dispatched, GENEROUS_S)
        link._dispatch = dispatch  # type: ignore[method-assign]


@pytest.mark.realtime
def test_a_reading_thread_that_calls_in_keeps_its_reading_role(pen_sim_pty):
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        link = pen.link
        kept: list[bool] = []
        errors: list[BaseException] = []

        entered: list[bool] = []

        def listener(message) -> None:  # runs in whichever thread reads (role held)
            if entered or not isinstance(message, Telemetry):
                return  # once: telemetry read while it calls in (a slow reply) calls it again
            me = threading.current_thread()
            if link._reading is not me:
                return
            entered.append(True)
            try:
                pen.set_setpoints(**CROWN)  # a listener calls the engine
                after_call = link._reading is me
                pen.estop()  # a handler stops the pen while this thread reads
                kept.append(after_call and link._reading is me)
            except BaseException as exc:  # reported below
                errors.append(exc)
                kept.append(False)

        link.add_listener(listener)
        wait_until(sim, lambda: bool(kept), GENEROUS_S)
        link.remove_listener(listener)
        assert errors == [] and kept == [True]
        assert pen.state is State.ESTOP
        before = link.stats.telemetry_received  # the port is still read afterwards
        wait_until(sim, lambda: link.stats.telemetry_received >= before + 10, GENEROUS_S)
