"""Review 16 QA: a link that goes dead (`stall@T`, docs/simulator.md "Faults") at a pass's
planned NEEDLE_STOP. The controller latches FAULT at once on the unconfirmed stop (the lease
held: the pen stops by itself); over a link silent past its limit that is a lost pen: the
session ends `link_lost`, exit 6 (README), not "a fault the pen latched ... smp clear" (4),
as a stall mid-pass always did. A real latched fault (a jam: the pen still reports) stays 4."""

from __future__ import annotations

import pytest

from tests.smpdevice.replay.rev16_station import out, run_session, smp, station


@pytest.mark.parametrize("stall_at_s", ["1.5", "2.9", "2.95", "3.0", "3.05"])
def test_a_link_dead_at_the_passs_stop_is_a_lost_pen_not_a_latched_fault(tmp_path, stall_at_s):
    data = station(tmp_path / "data")
    run = run_session(data, f"stall@{stall_at_s}")
    text = out(run)
    assert "ended by a fault the pen latched" not in text, text
    assert run.returncode == 6, text
    assert "ended because the pen was lost" in text, text
    replay = smp(data, "replay", "last")  # the same code decides the same on the recording
    assert replay.returncode == 0 and "match: session" in out(replay), out(replay)


def test_a_jam_at_the_passs_stop_is_still_a_latched_fault(tmp_path):
    data = station(tmp_path / "data")
    run = run_session(data, "jam@2.95-3.5")
    assert run.returncode == 4, out(run)
    assert "ended by a fault the pen latched" in out(run)
