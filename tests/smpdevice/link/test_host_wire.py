"""The host's side of docs/protocol.md s4 and s6, on the real controller and simulator."""

from __future__ import annotations

import itertools

import pytest

from firmware_protocol.codes import MsgType
from firmware_protocol.frame import StreamDecoder
from tests.smpdevice.conftest import CROWN
from tests.smpdevice.virtual_time import wall_until

pytestmark = pytest.mark.virtual_time


def _tap_host_frames(sim):
    """Every frame the pen receives, decoded apart (observation only: the pen is unchanged)."""
    seen: list[tuple[int, MsgType]] = []
    decoder = StreamDecoder()
    fw = sim.firmware
    original = fw.receive_now

    def receive_now(data: bytes) -> None:
        for frame in decoder.feed(data):
            seen.append((frame.seq, frame.message.TYPE))
        original(data)

    fw.receive_now = receive_now
    return seen


def test_host_seq_wraps_255_to_1_and_never_uses_0(sim, pen):
    """protocol.md:446 'The host numbers its commands 1, 2, ..., 255, 1, 2, ... It never uses 0.'"""
    seen = _tap_host_frames(sim)
    pen.set_zone("crown")
    for i in range(300):
        pen.set_setpoints(**{**CROWN, "depth_mm": 0.4 + (i % 5) * 0.01})
    seqs = [s for s, _ in seen]
    assert seqs and 0 not in seqs
    wraps = [i for i in range(1, len(seqs)) if seqs[i] < seqs[i - 1]]
    assert wraps, "300 commands never wrapped the counter"
    for i in wraps:
        assert (seqs[i - 1], seqs[i]) == (255, 1), seqs[i - 3 : i + 3]


def test_a_schema_mismatch_is_refused_naming_both_hashes_and_nothing_else_is_sent(monkeypatch):
    """protocol.md:648-649: on a mismatch the host 'refuses to go on, loudly, naming both
    values; it sends nothing else'."""
    import simulators.firmware_commands as pen_side
    from firmware_protocol.messages import SCHEMA_HASH
    from simulators import PenSimulator, VirtualClock
    from smpdevice.control import PenController
    from smpdevice.errors import SmpError

    monkeypatch.setattr(pen_side, "SCHEMA_HASH", 0x0BADC0DE)  # a pen of another catalogue
    with PenSimulator(seed=1, clock=VirtualClock()) as sim:
        sim.advance(0.06)
        seen = _tap_host_frames(sim)
        with pytest.raises(SmpError) as caught:
            PenController.connect(sim.url, clock=sim.clock)
        text = str(caught.value)
        assert "0x0badc0de" in text.lower() and f"0x{SCHEMA_HASH:08x}" in text.lower(), text
        assert {t for _, t in seen} == {MsgType.IDENTIFY_REQUEST}, seen


def test_a_command_outstanding_at_an_estop_is_never_resent_after_it(sim, pen):
    """protocol.md:509-513: 'A host never resends, after an ESTOP, a command it sent (or
    queued) before it ... such a command ends there, unsent, with an error that says the
    E-stop superseded it.' The pen's ACK of the SET_SETPOINTS is lost, so the host would
    resend it at its retransmission timeout; an E-stop comes first."""
    import threading

    from smpdevice.errors import SmpError

    seen = _tap_host_frames(sim)
    pen.set_zone("crown")
    sim.link.drop_next_frames(1)  # the ACK of the next command never arrives
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            pen.set_setpoints(**CROWN)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    estop = threading.Thread(target=pen.estop)
    # Virtual time stands still from before the SET_SETPOINTS is sent until the ESTOP is on
    # the wire: a test thread starved between starting the worker and looking at the wire
    # must not let time reach the resend first (held_from would start holding only at its
    # first look, which a loaded machine delays; nothing here waits on virtual time).
    with sim.time.held():
        worker.start()
        wall_until(lambda: any(t is MsgType.SET_SETPOINTS for _, t in seen),
                   "the SET_SETPOINTS on the wire")
        estop.start()
        wall_until(lambda: any(t is MsgType.ESTOP for _, t in seen), "the ESTOP on the wire")
    estop.join(10)
    worker.join(10)
    assert not worker.is_alive()
    types = [t for _, t in seen]
    first_estop = types.index(MsgType.ESTOP)
    assert MsgType.SET_SETPOINTS not in types[first_estop:], types
    assert isinstance(outcome[0], SmpError) and "E-stop" in str(outcome[0]), outcome


def test_a_lost_command_is_sent_4_times_with_doubling_timeouts_then_a_clear_error(sim, pen):
    """protocol.md s12: HOST_ATTEMPTS 4 sends of one command with the same SEQ and payload;
    timeout bounds 20..500 ms, 'each retry doubles it up to this'; reliability.md s1: the error
    'LinkTimeout: no reply from the pen to SET_SETPOINTS after 4 tries: it may or may not have
    been applied'. The pen never gets the SET_SETPOINTS (lost on the way), the lease is 200 ms
    (the fixture's): all four sends fit (protocol.md s12)."""
    from smpdevice.errors import SmpError

    sends: list[tuple[float, bytes]] = []
    original = sim.link.inbound_frames

    def inbound_frames(data: bytes, now_s: float):
        for frame in StreamDecoder().feed(data):
            if frame.message.TYPE is MsgType.SET_SETPOINTS:
                sends.append((now_s, data))
        return original(data, now_s)

    sim.link.inbound_frames = inbound_frames
    pen.set_zone("crown")
    sim.link.drop_inbound(MsgType.SET_SETPOINTS)
    with pytest.raises(SmpError) as caught:
        pen.set_setpoints(**CROWN)
    text = str(caught.value)
    assert len(sends) == 4, (len(sends), text)
    assert len({data for _, data in sends}) == 1  # same SEQ, same payload, byte for byte
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(sends)]
    assert all(0.019 <= g <= 0.501 for g in gaps), gaps
    assert all(b >= a * 1.9 or b >= 0.499 for a, b in itertools.pairwise(gaps)), gaps
    assert "4 tries" in text and "may or may not have been applied" in text, text


def test_renewals_go_on_every_quarter_lease_while_a_command_is_outstanding(sim, pen):
    """protocol.md s4: 'LEASE_RENEW, every quarter lease while the host keeps the lease, also
    while a command is outstanding ...; a renewal is never retransmitted: the next one
    follows.' Armed pen, lease 200 ms (the fixture's): a SET_SETPOINTS whose every send is
    lost is outstanding for its four tries; the renewals must keep their pace meanwhile."""
    from smpdevice.errors import SmpError

    renewals: list[tuple[float, int]] = []
    original = sim.link.inbound_frames

    def inbound_frames(data: bytes, now_s: float):
        for frame in StreamDecoder().feed(data):
            if frame.message.TYPE is MsgType.LEASE_RENEW:
                renewals.append((now_s, frame.seq))
        return original(data, now_s)

    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()
    sim.link.inbound_frames = inbound_frames
    sim.link.drop_inbound(MsgType.SET_SETPOINTS)
    t0 = sim.clock.now()
    with pytest.raises(SmpError):
        pen.set_setpoints(**{**CROWN, "depth_mm": 0.45})
    t1 = sim.clock.now()
    during = [(t, s) for t, s in renewals if t0 <= t <= t1]
    assert t1 - t0 > 0.1 and len(during) >= 2, (t1 - t0, renewals)
    times = [t0, *[t for t, _ in during], t1]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) <= 0.05 + 0.01, gaps  # a quarter lease, plus a driver step or two
    seqs = [s for _, s in renewals]
    assert len(seqs) == len(set(seqs)), seqs  # never retransmitted
