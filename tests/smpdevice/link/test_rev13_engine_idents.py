"""Review REVLAT (session 13): the engine's `alive` (a field the loop clears), `in_loop` (by
thread ident) and the link's reading role (by `_reading_id`), against the real simulator.
Thread idents are reused by the OS as soon as a thread ends: nothing may take a new thread for
a dead one (the loop, a reader of the port)."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError

import pytest

from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from smpdevice.link.completion import Completion
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wall_until

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _in_new_thread(fn):
    """fn() in a fresh thread (joined); its result, and that thread's ident."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append((fn(), threading.get_ident())))
    thread.start()
    thread.join(timeout=30.0)
    assert not thread.is_alive()
    return out[0]


@pytest.mark.virtual_time
def test_the_loop_knows_itself_and_a_dead_loops_ident_is_nobodys():
    with virtual_sim(seed=9) as sim:
        pen = PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim))
        seen: list = []

        def listener(old, new, reason) -> None:  # runs in the loop thread
            engine = pen._engine
            seen.append((threading.get_ident(), engine.in_loop(), engine.alive))
            try:
                pen.set_setpoints(**SP)
            except StateError as exc:
                seen.append(str(exc))

        pen.state_listeners.add(listener)
        pen.set_zone("crown")
        pen.set_setpoints(**SP)
        pen.arm()  # a state change: the listener runs in the loop
        sim.time.wait_until(lambda: len(seen) >= 2, what="the listener ran")
        loop_ident, in_loop, alive = seen[0]
        assert in_loop and alive
        assert seen[1].startswith("controller methods cannot be called from a listener")
        engine = pen._engine
        assert not engine.in_loop() and engine.alive  # this thread is not the loop
        pen.state_listeners.remove(listener)
        pen.close()
        assert not engine.alive
        # fresh threads, all alive at once: glibc hands them the stacks (and so the idents)
        # of the threads that just ended, the dead loop's among them
        answers: dict[int, bool] = {}
        barrier = threading.Barrier(16)

        def ask() -> None:
            barrier.wait(timeout=30.0)
            answers[threading.get_ident()] = engine.in_loop()

        batch = [threading.Thread(target=ask) for _ in range(16)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join(timeout=30.0)
        assert loop_ident in answers  # the case under test happened
        assert not any(answers.values())
        with pytest.raises(StateError, match="not connected to a pen"):
            pen.set_setpoints(**SP)


@pytest.mark.virtual_time
def test_alive_from_start_to_the_loops_return_on_every_reconnect():
    with virtual_sim(seed=10) as sim:
        pen = PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim))
        try:
            for _ in range(3):
                engine = pen._engine
                assert engine.alive and engine._thread.is_alive()
                sim.disconnect()
                pen.wait_for_state(State.DISCONNECTED, timeout_s=5.0)
                sim.reconnect()
                pen.reconnect()
                wall_until(lambda e=engine: not e._thread.is_alive(), "the old loop ended")
                assert not engine.alive  # the old engine's loop ended: not alive
                assert pen._engine is not engine and pen._engine.alive
                pen.set_zone("crown")
                pen.set_setpoints(**SP)
        finally:
            pen.close()


def test_a_completion_done_answers_without_waiting_as_before():
    done = Completion()
    done.set_result(5)
    assert done.result(timeout=0) == 5
    failed = Completion()
    failed.set_exception(KeyError("k"))
    with pytest.raises(KeyError):
        failed.result(timeout=0)
    cancelled = Completion()
    assert cancelled.cancel()
    with pytest.raises(CancelledError):
        cancelled.result(timeout=0)
    pending = Completion()
    with pytest.raises(TimeoutError):
        pending.result(timeout=0)
    told: list = []
    hooked = Completion(told.append)
    threading.Timer(0.01, hooked.set_result, (7,)).start()
    assert hooked.result(timeout=30.0) == 7 and told == [hooked]


@pytest.mark.realtime
def test_short_lived_threads_share_the_port_and_an_estop_from_one_is_written_at_once(
        pen_sim_pty):
    """Over a pty the caller reads its own reply (the reading role, by thread ident): many
    threads that end at once (their idents reused by the next) each send and read; then an
    E-stop from a fresh thread latches and is confirmed, and the role is free."""
    sim, path = pen_sim_pty
    with PenController.connect(path, calibration=true_calibration(sim)) as pen:
        pen.set_zone("crown")
        errors: list = []
        idents: set[int] = set()

        def one() -> None:
            try:
                idents.add(threading.get_ident())
                pen.set_setpoints(**CROWN)
                pen.set_setpoints(**{**CROWN, "depth_mm": 0.4})
            except Exception as exc:  # reported below
                errors.append(exc)

        for _ in range(30):
            batch = [threading.Thread(target=one) for _ in range(3)]
            for thread in batch:
                thread.start()
            for thread in batch:
                thread.join(timeout=30.0)
        assert errors == []
        assert len(idents) < 90  # idents were reused: the case under test happened
        link = pen.link
        assert link._reading in (None, link._reader) and (
            getattr(link, "_reading_id", 0) in (0, link._reader.ident))
        _in_new_thread(pen.estop)
        assert pen.state is State.ESTOP
        wall_until(lambda: sim.firmware.state.name == "ESTOP", "the pen latched")
        assert link._reading in (None, link._reader)
