"""The host keeps to protocol.md s4/s5 as written: it never resends a command once DEDUP_WINDOW
other seqs (lease renewals included) went out after it, since the pen may have forgotten it and
would run it twice (review 7c R05); and only ESTOP, LEASE_RENEW and a one-shot safety
NEEDLE_STOP overlap the one outstanding command (R03).

The real controller on the simulator's virtual clock, over its byte stream; faults are injected
on the simulator's side of the line only (lost ACKs, a slow adapter): host and firmware as built.
"""

from __future__ import annotations

import random

import pytest

from firmware_protocol import Message
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.frame import decode_frame
from firmware_protocol.messages import Ack, EStop, LeaseRenew, Nack, NeedleStop
from firmware_protocol.timing import DEDUP_WINDOW
from smpdevice.control import PenController, State
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkTimeout
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim

LEASE_MS = 50  # the shortest lease the host allows: a renewal every 12.5 ms


class WireLog:
    """Every frame the host writes, classified as the spec's s4 classifies it, with the checks
    of s4 (what may overlap) and s5 (no resend beyond the window) made at each write."""

    def __init__(self, pen: PenController) -> None:
        engine, link = pen._engine, pen.link
        assert engine is not None and link is not None  # connected
        self.engine, self.link = engine, link
        self.sent_seqs: list[int] = []  # the seq of each new command written, in order
        self.first_send_at: dict[int, int] = {}  # seq -> its index in sent_seqs
        self.fresh: set[int] = set()  # drawn, not yet written
        self.answered: set[int] = set()  # seqs the host received a reply for
        self.queued: dict[int, object] = {}  # seq of a queue command -> its operation
        self.resends: list[tuple[str, int]] = []  # (type, other seqs sent since its first)
        self.violations: list[str] = []
        draw, send, dispatch = link.next_seq_locked, link.send, link._dispatch

        def next_seq_locked() -> int:
            seq = draw()
            self.fresh.add(seq)
            return seq

        def spy_send(message: Message, seq: int | None = None,
                     estops_seen: int | None = None) -> int:
            self._before_send(message, seq)
            return send(message, seq, estops_seen)

        def spy_dispatch(frame) -> None:
            if frame.seq and isinstance(frame.message, (Ack, Nack)):
                self.answered.add(frame.seq)
            dispatch(frame)

        link.next_seq_locked = next_seq_locked  # type: ignore[method-assign]
        link.send = spy_send  # type: ignore[method-assign]
        link._dispatch = spy_dispatch  # type: ignore[method-assign]

    def _before_send(self, message: Message, seq: int | None) -> None:
        name = message.TYPE.name
        if seq is None:  # a one-shot drawn by send itself: only a safety stop may do that
            if not isinstance(message, NeedleStop):
                self.violations.append(f"one-shot {name}: only NEEDLE_STOP may go out so")
            return
        if seq in self.fresh:  # its first send
            self.fresh.discard(seq)
            self.answered.discard(seq)
            self.first_send_at[seq] = len(self.sent_seqs)
            self.sent_seqs.append(seq)
            renewal = isinstance(message, LeaseRenew) and seq in self.engine._renewals
            if not (renewal or isinstance(message, EStop)):
                self._one_outstanding(name, seq)
            return
        if isinstance(message, EStop):
            return  # every ESTOP acts: re-sending it is not a duplicate (s5)
        others = len(self.sent_seqs) - self.first_send_at[seq] - 1
        self.resends.append((name, others))
        if others >= DEDUP_WINDOW:
            self.violations.append(f"{name} seq {seq} resent after {others} other seqs")

    def _one_outstanding(self, name: str, seq: int) -> None:
        ops = self.engine.ops
        if not ops or ops[0].seq != seq:
            self.violations.append(f"{name} seq {seq} is not the head of the queue")
            return
        for other, op in list(self.queued.items()):
            if other in self.answered or op.future.done():  # type: ignore[attr-defined]
                del self.queued[other]
            elif op is not ops[0]:
                self.violations.append(f"{name} seq {seq} went out while seq {other} was "
                                       "outstanding")
        self.queued[seq] = ops[0]


def _lose_replies(sim, should_drop) -> list[str]:
    """Lose pen -> host ACK/NACK frames for which `should_drop(message)` says so."""
    real, lost = sim.link.outbound, []

    def outbound(frame: bytes, t_s: float):
        msg = decode_frame(frame).message
        if isinstance(msg, (Ack, Nack)) and should_drop(msg):
            lost.append(MsgType(msg.acked_type).name)
            return []
        return real(frame, t_s)

    sim.link.outbound = outbound
    return lost


def test_a_lost_start_ack_is_never_resent_past_the_window_after_a_pedal_release():
    """R05 end to end: footswitch `required`, a slow adapter (pen -> host 60 ms late), the first
    two ACKs of NEEDLE_START lost; the pedal is lifted 30 ms after the needle starts and pressed
    again 50 ms later. The host must not send that NEEDLE_START again once the renewals pushed
    it out of the pen's window: the start fails as unanswered, NEEDLE_STOP goes out, the needle
    stays stopped and ran once. (Old code: the late resend ran the needle again.)"""
    with virtual_sim(seed=7, link_faults="delay=0.06") as sim:
        lost = _lose_replies(sim, lambda msg: msg.acked_type == MsgType.NEEDLE_START
                             and len(lost) < 2)
        marks: dict[str, float] = {}

        def technician(now_s: float) -> None:
            fw = sim.firmware
            if "run" not in marks and fw.state is FirmwareState.RUNNING:
                marks["run"] = now_s
            elif "run" in marks and "up" not in marks and now_s >= marks["run"] + 0.03:
                marks["up"] = now_s
                fw.physics.cond.pedal_down = False
            elif "up" in marks and "down" not in marks and now_s >= marks["up"] + 0.05:
                marks["down"] = now_s
                fw.physics.cond.pedal_down = True

        sim.clock.on_advance(technician)
        with PenController.connect(sim.url, calibration=true_calibration(sim),
                                   lease_ms=LEASE_MS, clock=sim.clock,
                                   footswitch="required") as pen:
            pen.set_zone("crown")
            pen.set_setpoints(**CROWN)
            pen.arm()
            wire = WireLog(pen)
            stops_before = sim.firmware.executed[MsgType.NEEDLE_STOP]
            with pytest.raises(LinkTimeout, match="not sent again") as caught:
                pen.start_needle()
            assert "NEEDLE_START" in str(caught.value)
            assert f"remembers only the last {DEDUP_WINDOW}" in str(caught.value)
            assert "NEEDLE_STOP to be sure" in str(caught.value)
            sim.time.sleep(0.3)
            assert "down" in marks, marks  # the pedal was lifted and pressed again
            assert sim.firmware.state is FirmwareState.ARMED
            assert sim.firmware.executed[MsgType.NEEDLE_START] == 1
            assert sim.firmware.executed[MsgType.NEEDLE_STOP] > stops_before
            assert pen.state is State.ARMED
            assert wire.violations == []
            assert lost == ["NEEDLE_START", "NEEDLE_START"]
            pen.estop()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_a_lossy_slow_link_the_host_keeps_to_the_overlap_and_window_rules(seed):
    """Half the replies lost at random (renewals' too), pen -> host 30 ms late, the shortest
    lease: a technician's round of requests. At every frame the host writes: a resend has
    fewer than DEDUP_WINDOW other seqs since its first send; a new command other than
    LEASE_RENEW, ESTOP or a one-shot NEEDLE_STOP goes out only when no other is outstanding.
    And no command ran twice on the pen: every NEEDLE_START it executed was asked for anew."""
    rng = random.Random(seed)
    with (virtual_sim(seed=seed, link_faults="delay=0.03") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                lease_ms=LEASE_MS, clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        wire = WireLog(pen)
        lost = _lose_replies(sim, lambda msg: rng.random() < 0.5)
        starts_asked = 0
        for i in range(30):
            try:
                if pen.state is State.IDLE:
                    pen.set_setpoints(**CROWN)
                    pen.arm()
                elif pen.state is State.ARMED:
                    starts_asked += 1
                    pen.start_needle()
                elif pen.state is State.RUNNING:
                    pen.set_setpoints(**{**CROWN, "speed_hz": 90.0 + i})
                    pen.stop_needle()
                else:
                    pen.clear_faults()
            except SmpError:
                pass  # a request that failed on this line: the rules still hold
        del sim.link.outbound  # the line heals: the E-stop below is answered
        assert lost, "no reply was lost: the test exercised nothing"
        assert any(others > 0 for _, others in wire.resends), wire.resends
        assert wire.violations == []
        assert sim.firmware.executed[MsgType.NEEDLE_START] <= starts_asked
        pen.estop()


def test_a_resend_inside_the_window_is_still_made_and_answered_from_the_pen_s_cache():
    """The rule gives up only what the pen may have forgotten: with the default lease (a
    renewal every 125 ms) one lost ACK of SET_SETPOINTS is recovered by its resend, which the
    pen answers from its window without running it again."""
    with (virtual_sim(seed=4) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        wire = WireLog(pen)
        lost = _lose_replies(sim, lambda msg: msg.acked_type == MsgType.SET_SETPOINTS
                             and not lost)
        before = sim.firmware.executed[MsgType.SET_SETPOINTS]
        pen.set_setpoints(**{**CROWN, "speed_hz": 95.0})
        assert lost == ["SET_SETPOINTS"]
        assert [name for name, _ in wire.resends] == ["SET_SETPOINTS"]
        assert sim.firmware.executed[MsgType.SET_SETPOINTS] == before + 1
        assert sim.firmware.duplicates >= 1
        assert wire.violations == []
        pen.disarm()


def test_an_arm_given_up_after_its_last_try_is_followed_by_needle_stop():
    """READ6 item 3: one give-up rule (protocol.md s5): a NEEDLE_START or ARM sent and given
    up may have been applied, so NEEDLE_STOP follows, after the last try as out of the window.
    (Old code: after the last try only a NEEDLE_START was followed by NEEDLE_STOP.)"""
    with (virtual_sim(seed=11) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=2000,
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        lost = _lose_replies(sim, lambda msg: msg.acked_type == MsgType.ARM)
        stops_before = sim.firmware.executed[MsgType.NEEDLE_STOP]
        with pytest.raises(LinkTimeout, match=r"ARM after \d+ tries: it may") as caught:
            pen.arm()  # every try's reply lost, inside the window: its last try ends it
        assert "NEEDLE_STOP to be sure" in str(caught.value)
        assert len(lost) >= 2 and set(lost) == {"ARM"}
        sim.time.sleep(0.1)
        assert sim.firmware.executed[MsgType.NEEDLE_STOP] > stops_before
        del sim.link.outbound  # the line heals: the E-stop below is answered
        pen.estop()
