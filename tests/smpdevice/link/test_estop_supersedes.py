"""A request asked before an E-stop is never written after it (review 8a R01, protocol.md s5/s9).

The host's CLEAR_FAULTS lost on the line, then the operator's ESTOP: a resend of that clear
(same seq, never seen by the pen) would be a new command in ESTOP and undo the E-stop. From the
moment the host writes an ESTOP, every request asked before it ends with SupersededByEStop
instead of being (re)sent, stops excepted, whatever the loop knows of the latch yet (Link.send
checks under its write lock). A clear asked after the E-stop is a person's decision: it works.

Real controller, simulator on virtual time; faults only on the line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.frame import decode_frame
from firmware_protocol.messages import Ack, ClearFaults, EStop, NeedleStop
from smpdevice.control import PenController, State
from smpdevice.link import Link, SupersededByEStop
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wall_until

GENEROUS_S = 30.0  # wall time for a thread to end (a loaded CI machine)


def _tx_after_last_estop(link: Link) -> list[str]:
    """Names of the frames the host wrote after its last ESTOP (per its frame history)."""
    history = list(link.history)
    last = max(i for i, (_, d, _, m) in enumerate(history) if d == "tx" and isinstance(m, EStop))
    return [type(m).__name__ for _, d, _, m in history[last + 1:] if d == "tx"]


def _in_thread(fn: Callable[[], object], outcome: dict[str, object], key: str) -> threading.Thread:
    def run() -> None:
        try:
            fn()
            outcome[key] = "returned"
        except Exception as exc:
            outcome[key] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _clear_lost_then_estop(sim, pen: PenController, estop_ack: str) -> dict[str, object]:
    """The first CLEAR_FAULTS frame is lost host->pen; while it is out, the operator presses
    E-stop (another thread), whose first ACK is `estop_ack` ("lost" or "late")."""
    marks: dict[str, object] = {}
    real_in, real_out = sim.link.inbound_frames, sim.link.outbound
    rto_s = pen.link.rto.rto_s  # type: ignore[union-attr]

    def inbound_frames(data: bytes, now_s: float):
        try:
            msg = decode_frame(data).message
        except Exception:
            msg = None
        if isinstance(msg, ClearFaults) and "clear_lost" not in marks:
            marks["clear_lost"] = now_s
            marks["operator"] = _in_thread(pen.estop, marks, "estop")
            return []
        if isinstance(msg, EStop) and "clear_lost" in marks:
            marks.setdefault("estop_in", now_s)
        return real_in(data, now_s)

    def outbound(frame: bytes, t_s: float):
        msg = decode_frame(frame).message
        if (isinstance(msg, Ack) and msg.acked_type == MsgType.ESTOP
                and "estop_in" in marks and "ack_hit" not in marks):
            marks["ack_hit"] = t_s
            if estop_ack == "lost":
                return []
            # late, but inside the ESTOP's first wait: after the clear's retransmission timer
            return [(0.9 * rto_s + d, c) for d, c in real_out(frame, t_s)]
        return real_out(frame, t_s)

    sim.link.inbound_frames = inbound_frames
    sim.link.outbound = outbound
    try:
        pen.clear_faults()
        marks["clear"] = "returned"
    except Exception as exc:
        marks["clear"] = exc
    marks["operator"].join(timeout=GENEROUS_S)  # type: ignore[union-attr]
    sim.time.sleep(0.5)
    sim.link.inbound_frames, sim.link.outbound = real_in, real_out
    assert "estop_in" in marks, marks  # the scenario happened: the ESTOP after the lost clear
    return marks


def _resent_before_the_estop(link: Link) -> bool:
    """The clear's retransmission went out before the operator's ESTOP: the operator's thread
    started late (a loaded machine), so the race this test is about did not happen."""
    tx = [m for _, d, _, m in link.history if d == "tx"]
    second_estop = [i for i, m in enumerate(tx) if isinstance(m, EStop)][1]
    return sum(isinstance(m, ClearFaults) for m in tx[:second_estop]) > 1


@pytest.mark.parametrize("estop_ack", ["lost", "late"])
def test_a_clear_faults_lost_before_an_estop_is_never_resent_after_it(estop_ack):
    for _attempt in range(5):  # until the operator's E-stop beats the clear's retransmission
        with (virtual_sim(seed=3) as sim,
              PenController.connect(sim.url, calibration=true_calibration(sim),
                                    clock=sim.clock) as pen):
            pen.estop()  # a first E-stop; the technician clears it, the operator presses again
            clears_before = sim.firmware.executed[MsgType.CLEAR_FAULTS]
            marks = _clear_lost_then_estop(sim, pen, estop_ack)
            if _resent_before_the_estop(pen.link):  # type: ignore[arg-type]
                assert "ClearFaults" not in _tx_after_last_estop(pen.link)  # type: ignore[arg-type]
                continue
            _check_superseded(sim, pen, marks, clears_before, estop_ack)
            return
    pytest.fail("the operator's E-stop never went out before the clear's retransmission")


def _check_superseded(sim, pen: PenController, marks: dict[str, object], clears_before: int,
                      estop_ack: str) -> None:
    error = marks["clear"]
    assert isinstance(error, SupersededByEStop), error
    assert "CLEAR_FAULTS was not sent (again)" in str(error)
    assert "clear it with a new request" in str(error)
    assert "ClearFaults" not in _tx_after_last_estop(pen.link)  # type: ignore[arg-type]
    assert sim.firmware.executed[MsgType.CLEAR_FAULTS] == clears_before
    assert sim.firmware.state is FirmwareState.ESTOP
    assert pen.state is State.ESTOP
    if estop_ack == "late":
        assert marks["estop"] == "returned"  # the operator's E-stop was confirmed

    pen.clear_faults()  # asked after the E-stop: a person's decision, it runs
    assert sim.firmware.state is FirmwareState.IDLE
    assert pen.state is State.IDLE


def test_requests_queued_before_an_estop_never_go_out_after_it():
    """One clear on the wire (its frames all lost), a second queued behind it; then the E-stop:
    neither is written after the ESTOP, both end with SupersededByEStop."""
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.estop()
        sim.link.drop_inbound(MsgType.CLEAR_FAULTS)
        outcome: dict[str, object] = {}
        engine = pen._eng
        # The pen's clock stands still from before the first clear is asked until the ESTOP
        # is on the wire: a test thread starved in between (a loaded machine) let virtual time
        # run on, the clears ran out of tries first, and the race under test never happened
        # (LinkTimeout; 0.3 s of wall was 0.6 s of the pen's clock). Nothing here waits on the
        # clock: the first clear is written, the second queues, the ESTOP is written, at once.
        link = pen.link
        assert link is not None
        written = link.estops_written
        with sim.time.held():
            first = _in_thread(pen.clear_faults, outcome, "first")
            wall_until(lambda: len(engine.ops) == 1, "the first clear on the wire")
            second = _in_thread(pen.clear_faults, outcome, "second")
            wall_until(lambda: len(engine.ops) == 2, "the second clear queued")
            operator = _in_thread(pen.estop, outcome, "estop")  # it waits for its ACK
            wall_until(lambda: link.estops_written > written, "the ESTOP written")
        for thread in (operator, first, second):
            thread.join(timeout=GENEROUS_S)

        assert outcome["estop"] == "returned", outcome  # the E-stop was confirmed
        assert isinstance(outcome["first"], SupersededByEStop), outcome
        assert isinstance(outcome["second"], SupersededByEStop), outcome
        assert "ClearFaults" not in _tx_after_last_estop(pen.link)  # type: ignore[arg-type]
        assert pen.state is State.ESTOP
        sim.link.clear_inbound()
        pen.clear_faults()
        assert sim.firmware.state is FirmwareState.IDLE


def test_the_link_refuses_a_request_from_before_an_estop_but_never_a_stop():
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        link = pen.link
        assert link is not None
        asked = link.estops_written
        pen.estop()
        assert link.estops_written == asked + 1
        tx_before = link.stats.tx_frames
        with pytest.raises(SupersededByEStop, match="CLEAR_FAULTS was not sent"):
            link.send(ClearFaults(), None, asked)
        assert link.stats.tx_frames == tx_before  # nothing written
        link.send(NeedleStop(), None, asked)  # a stop always goes out
        link.send(EStop(), None, asked)  # and so does an E-stop, counted
        assert link.estops_written == asked + 2
        assert link.stats.tx_frames == tx_before + 2
        assert sim.firmware.state is FirmwareState.ESTOP
