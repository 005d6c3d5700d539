"""Review 20: a pass cut by a lost link and the pen reconnected at once (an API client
reconnecting on the state change) is recorded `link_lost`, whichever state the controller is in
when the pass is judged (it was `stopped` when the reconnect had reached `connecting`: the pass
was then not resumable, and its replay differed). Real simulator, virtual time, real SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from smpdevice.control import PenController
from smpdevice.passlog import PassLog
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.replay.test_rev20_reconnect_replay import (
    Recorded,
    _pull_and_replug,
    _replays,
)
from tests.smpdevice.virtual_time import after, virtual_sim

pytestmark = pytest.mark.virtual_time


def _record_any(tmp_path: Path, act, *, at_pass_end: int | None = 1,
                at_s: float | None = None, pass_s: float = 0.3) -> Recorded:
    """A 3-pass session; `act(sim, pen)` in a thread after pass `at_pass_end`'s end is logged
    (joined there), or at virtual `at_s` (not joined: during a pass)."""
    path = tmp_path / "passlog.sqlite"
    with (virtual_sim(seed=3) as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen,
          PassLog.open(path) as log):
        session = TreatmentSession.open(pen, log, short_profile(pass_s, passes=3),
                                        technician="ana", screening=parse_screening(CLEAR))
        original, count = log.end_pass, [0]
        done = threading.Event()

        def run_act():
            try:
                act(sim, pen)
            finally:
                done.set()

        def hooked(*args, **kwargs):
            result = original(*args, **kwargs)
            count[0] += 1
            if at_pass_end is not None and count[0] == at_pass_end:
                other = threading.Thread(target=run_act)
                other.start()
                other.join(30)
            return result

        log.end_pass = hooked
        if at_s is not None:
            after(sim.clock, at_s, run_act, in_thread=True)
        session.play()
        sim.time.wait_until(done.is_set, what="the act", timeout_s=20)
        sim.time.sleep(0.1)
        session.suspend()
    recording = next((tmp_path / "recordings").glob(f"{session.session_id}*.mcap"))
    return Recorded(path, session.session_id, recording)


def _verdicts(rec: Recorded) -> list[tuple[bool, str]]:
    return [(r.match, str(r.difference)) for r in _replays(rec)]


def test_a_pass_cut_by_a_lost_link_is_recorded_link_lost_though_reconnected_at_once(tmp_path):
    """The cable pulled while the needle runs (pass 1), the pen reconnected at once (an API
    client reconnecting on the state change): the pass ended because the link was lost. Live
    it is logged `stopped` (the controller was idle again when the pass was judged); its
    replay, where the loss is applied at its point, says `link_lost`: the record depends on
    a race, and the replay then differs from it."""
    rec = _record_any(tmp_path, _pull_and_replug, at_pass_end=None, at_s=0.25, pass_s=0.6)
    with PassLog(rec.path, readonly=True) as log:
        outcomes = [p.outcome for p in log.passes(rec.session_id)]
    assert outcomes and outcomes[0] == "link_lost", outcomes
    verdicts = _verdicts(rec)
    assert all(m for m, _ in verdicts), verdicts


def test_a_pass_judged_while_the_link_is_being_made_again_is_link_lost():
    """The race above, pinned: judged while the reconnect is `connecting` (the live run's
    outcome was `stopped`, not resumable), the pass ended because its link was lost."""
    from smpdevice.control.states import State
    from smpdevice.records.model import PassOutcome
    from smpdevice.sessions.playable import outcome_from_state

    for state in (State.DISCONNECTED, State.CONNECTING):
        assert outcome_from_state(state, stopped_by_footswitch=False) is PassOutcome.link_lost
