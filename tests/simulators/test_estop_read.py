"""The E-stop's place in one read, and an E-stop cleared while booting (docs/protocol.md s9, s10).

Review 7c R02: with "ESTOP frames of a read run first", a read holding [CLEAR_FAULTS, ESTOP]
latched the E-stop and then cleared it with the OLDER CLEAR_FAULTS. The rule now: the ESTOPs
act first; then the other frames in wire order, in ESTOP, except that a CLEAR_FAULTS before the
last ESTOP of its read is superseded (NACK ESTOP_LATCHED, not executed, cached like any NACK).
R06: CLEAR_FAULTS of an E-stop taken while booting returns to BOOTING, and the boot completes
as usual. Review 8a R03: after a brownout "as usual" is FAULT with POWER_RESET, also when an
E-stop was taken and cleared while it rebooted (that clear never wipes the unreported reset).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import encode, rules
from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, Fault, MsgType
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from firmware_protocol.frame import decode_frame
from simulators.clock import VirtualClock
from simulators.faults import DeviceFault
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel
from tests.simulators.helpers import drive_to, make, state, valid_command


def _one_read(host, frames: list[tuple[m.Message, int]]) -> list[tuple[int, int, int | None]]:
    """Write the frames at once (one read on the pen's side); (seq, type, NACK reason) back."""
    before = len(host.replies)
    host.port.write(b"".join(encode(msg, seq) for msg, seq in frames))
    host.poll()
    return [(f.seq, f.message.TYPE, getattr(f.message, "reason", None))
            for f in host.replies[before:]]


@pytest.mark.parametrize("start", [S.RUNNING, S.FAULT], ids=["running", "fault"])
def test_a_clear_faults_sent_before_an_estop_in_one_read_never_clears_it(start: S) -> None:
    sim, host = drive_to(start)
    got = _one_read(host, [(m.ClearFaults(), 50), (m.EStop(), 51)])
    assert got == [(51, MsgType.ACK, None), (50, MsgType.NACK, R.ESTOP_LATCHED)]
    assert state(sim) is S.ESTOP
    assert host.events[-1].event == EventCode.ESTOP_LATCHED
    assert sim.firmware.executed[MsgType.CLEAR_FAULTS] == 0
    # the host's retransmission of that CLEAR_FAULTS gets the cached NACK: still latched
    assert host.request(m.ClearFaults(), seq=50) == m.Nack(MsgType.CLEAR_FAULTS,
                                                           R.ESTOP_LATCHED, 0)
    assert state(sim) is S.ESTOP and sim.firmware.duplicates == 1
    # a person's new CLEAR_FAULTS clears it
    assert host.request(m.ClearFaults(), seq=52) == m.Ack(MsgType.CLEAR_FAULTS)
    assert state(sim) is S.IDLE


def test_a_needle_start_sent_before_an_estop_in_one_read_never_starts() -> None:
    sim, host = drive_to(S.ARMED)
    got = _one_read(host, [(m.NeedleStart(), 50), (m.EStop(), 51)])
    assert got == [(51, MsgType.ACK, None), (50, MsgType.NACK, R.ESTOP_LATCHED)]
    assert state(sim) is S.ESTOP and sim.firmware.executed[MsgType.NEEDLE_START] == 0


def test_frames_after_the_estop_of_a_read_run_as_usual() -> None:
    sim, host = drive_to(S.RUNNING)
    got = _one_read(host, [(m.Ping(1), 50), (m.EStop(), 51), (m.ClearFaults(), 52)])
    assert got == [(51, MsgType.ACK, None), (50, MsgType.PONG, None), (52, MsgType.ACK, None)]
    assert state(sim) is S.IDLE  # the clear came after the E-stop: the host meant it


def _fresh() -> PenFirmware:
    fw = PenFirmware(PenModel(), VirtualClock())
    for _ in range(60):
        fw.step()
    assert fw.state is S.IDLE
    return fw


# Every command type (ESTOP included, often), valid payloads; distinct SEQs so no duplicates.
_TYPES = st.sampled_from([*sorted(rules.ACCEPTED_IN), MsgType.ESTOP, MsgType.ESTOP])


@settings(max_examples=150, deadline=None)
@given(before=st.lists(_TYPES, max_size=6), after=st.lists(_TYPES, max_size=6))
def test_nothing_before_the_last_estop_of_a_read_undoes_it_or_moves_the_needle(
    before: list[MsgType], after: list[MsgType]
) -> None:
    fw = _fresh()
    types = [*before, MsgType.ESTOP, *[t for t in after if t is not MsgType.ESTOP]]
    last = len(before)  # the last ESTOP of the read
    fw.take_frames()
    fw.receive_now(b"".join(encode(valid_command(t), i + 1) for i, t in enumerate(types)))
    replies = [decode_frame(f) for f in fw.take_frames()]
    replies = [f for f in replies if f.message.TYPE not in (MsgType.EVENT, MsgType.TELEMETRY)]
    by_seq = {f.seq: f.message for f in replies}
    assert len(by_seq) == len(replies) == len(types)  # one reply per command
    estops = [i + 1 for i, t in enumerate(types) if t is MsgType.ESTOP]
    assert [f.seq for f in replies[: len(estops)]] == estops  # the ESTOPs answered first
    for i, t in enumerate(types[:last]):  # run in ESTOP: motion refused, CLEAR_FAULTS too
        if t in rules.SUPERSEDED_BY_ESTOP or not rules.accepts(t, S.ESTOP):
            assert by_seq[i + 1] == m.Nack(t, R.ESTOP_LATCHED, 0), (types, i)
        elif t is not MsgType.ESTOP:
            assert by_seq[i + 1].TYPE != MsgType.NACK, (types, i)
    # nothing before the E-stop undid it: only a CLEAR_FAULTS after it may
    cleared = MsgType.CLEAR_FAULTS in types[last + 1:]
    assert (fw.state is S.ESTOP) is not cleared, (types, fw.state)


def test_an_estop_cleared_while_booting_finishes_the_boot() -> None:
    """Review 7c R06, decided: the pen does not skip its boot (the spec now says so)."""
    sim, host = make(boot=False)  # power-on: BOOTING
    assert host.request(m.EStop(), seq=1) == m.Ack(MsgType.ESTOP)
    assert host.request(m.ClearFaults(), seq=2) == m.Ack(MsgType.CLEAR_FAULTS)
    host.poll()
    cleared = host.events[-1]
    assert (cleared.event, cleared.state) == (EventCode.CLEARED, S.BOOTING)
    assert state(sim) is S.BOOTING
    assert host.request(m.Arm(), seq=3) == m.Nack(MsgType.ARM, R.BOOTING, 0)
    sim.advance(0.06)
    host.poll()
    booted = host.events[-1]
    assert (booted.event, booted.state, booted.faults) == (EventCode.BOOTED, S.IDLE, 0)
    assert state(sim) is S.IDLE


# ---- review 8a R03: a brownout's POWER_RESET survives an E-stop cleared while rebooting


def _booted(host) -> tuple[S, Fault]:
    booted = [e for e in host.events if e.event == EventCode.BOOTED][-1]
    return S(booted.state), Fault(booted.faults)


@pytest.mark.parametrize("cleared", [True, False], ids=["estop_cleared", "estop_kept"])
def test_a_brownout_is_reported_after_an_estop_taken_while_rebooting(cleared: bool) -> None:
    """Brownout while RUNNING; the operator's E-stop while it reboots (and the host's clear of
    it, before any BOOTED): the boot completes with POWER_RESET latched, in FAULT (cleared) or
    in ESTOP (kept), and EVENT BOOTED says so; CLEAR_FAULTS then acknowledges the reset."""
    sim, host = drive_to(S.RUNNING)
    sim.advance(0.1)
    sim.inject(DeviceFault.BROWNOUT)
    assert state(sim) is S.BOOTING
    assert host.request(m.EStop()) == m.Ack(MsgType.ESTOP)
    if cleared:
        assert host.request(m.ClearFaults()) == m.Ack(MsgType.CLEAR_FAULTS)
        assert state(sim) is S.BOOTING  # the boot is never skipped
    sim.advance(0.1)  # the boot completes
    host.poll()
    want = S.FAULT if cleared else S.ESTOP
    assert _booted(host) == (want, Fault.POWER_RESET)
    assert state(sim) is want and sim.firmware.faults == Fault.POWER_RESET
    assert host.telemetry[-1].faults & Fault.POWER_RESET
    assert host.request(m.Arm()).TYPE == MsgType.NACK
    assert host.request(m.ClearFaults()) == m.Ack(MsgType.CLEAR_FAULTS)
    assert state(sim) is S.IDLE and sim.firmware.faults == Fault(0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["estop", "clear", "tick"]), max_size=8))
def test_no_command_while_rebooting_hides_a_brownout(script: list[str]) -> None:
    """Whatever ESTOPs and CLEAR_FAULTS come while the pen reboots after a brownout, the boot
    completes with POWER_RESET latched (FAULT, or ESTOP if an E-stop is still latched)."""
    sim, host = drive_to(S.RUNNING)
    sim.inject(DeviceFault.BROWNOUT)
    for step in script:
        if step == "estop":
            host.request(m.EStop())
        elif step == "clear":
            host.request(m.ClearFaults())  # NACKed BOOTING unless an E-stop is latched
        else:
            sim.advance(0.002)
        assert state(sim) in (S.BOOTING, S.ESTOP)  # 8 ticks at most: still booting
    latched = state(sim) is S.ESTOP
    sim.advance(0.1)
    host.poll()
    want = S.ESTOP if latched else S.FAULT
    assert _booted(host) == (want, Fault.POWER_RESET), script
    assert state(sim) is want and sim.firmware.faults & Fault.POWER_RESET
