"""Review 16, finding 4, the rule itself (smpdevice/link/silence.py): a loop that woke late
(its process was stopped) gives the reader one turn before declaring silence; a real silence
is still declared, at most LATE_WAKE_GRACE_S later and never postponed twice; a silence seen
by a loop that woke on time, or on a virtual clock, is declared at once."""

from __future__ import annotations

import pytest

from smpdevice.link.silence import LATE_WAKE_GRACE_S, LATE_WAKE_S, SilenceJudge

LIMIT_S = 0.475  # two 250 ms leases less the margin


def test_a_loop_that_woke_on_time_declares_silence_at_once():
    judge = SilenceJudge(virtual=False)
    judge.sleeping(0.5)
    judge.woke(0.5 + LATE_WAKE_S / 2)  # a busy machine, not a held process
    assert not judge.lost(0.40, heard_s=0.0, limit_s=LIMIT_S)
    assert judge.lost(0.5 + LATE_WAKE_S / 2, heard_s=0.0, limit_s=LIMIT_S)


@pytest.mark.parametrize("held_s", [LATE_WAKE_S * 1.5, 2.0, 60.0])
def test_a_late_wake_postpones_a_real_silence_once_by_the_grace(held_s):
    judge = SilenceJudge(virtual=False)
    judge.sleeping(0.4)
    woke_s = 0.4 + held_s  # past the silence deadline
    judge.woke(woke_s)
    assert not judge.lost(woke_s, heard_s=0.0, limit_s=LIMIT_S)  # the reader's turn
    assert judge.due_s(0.0, LIMIT_S) == pytest.approx(woke_s + LATE_WAKE_GRACE_S)
    assert not judge.lost(woke_s + LATE_WAKE_GRACE_S / 2, heard_s=0.0, limit_s=LIMIT_S)
    # another late wake during the same silence gives no second turn
    judge.sleeping(woke_s + 0.01)
    judge.woke(woke_s + LATE_WAKE_GRACE_S)
    assert judge.lost(woke_s + LATE_WAKE_GRACE_S, heard_s=0.0, limit_s=LIMIT_S)


def test_a_byte_heard_in_the_turn_ends_that_silence_and_a_later_one_gets_its_own_turn():
    judge = SilenceJudge(virtual=False)
    judge.sleeping(0.3)
    judge.woke(2.3)
    assert not judge.lost(2.3, heard_s=0.0, limit_s=LIMIT_S)
    assert not judge.lost(2.35, heard_s=2.31, limit_s=LIMIT_S)  # the reader read the port
    assert judge.due_s(2.31, LIMIT_S) == pytest.approx(2.31 + LIMIT_S)
    judge.sleeping(2.8)
    judge.woke(2.8)  # on time: the next silence is declared at its deadline
    assert judge.lost(2.31 + LIMIT_S + 0.001, heard_s=2.31, limit_s=LIMIT_S)


def test_virtual_time_never_postpones():
    judge = SilenceJudge(virtual=True)
    judge.sleeping(0.3)
    judge.woke(5.0)
    assert judge.lost(5.0, heard_s=0.0, limit_s=LIMIT_S)
