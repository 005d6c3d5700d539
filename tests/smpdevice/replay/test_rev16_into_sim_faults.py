"""Review 16 QA: `smp replay --into-sim` of sessions recorded under fault specs that stay in
the replayed simulator (docs/simulator.md: `stall`/`disconnect`/`reconnect` and the host->pen
type faults act on the recorded commands at recorded times). Same code, same spec: a match
(exit 0) or a named difference (exit 1), never a false difference nor a file error."""

from __future__ import annotations

import pytest

from tests.smpdevice.replay.rev16_station import out, run_session, smp, station


@pytest.mark.parametrize("faults", ["delay_type=ARM:0.2", "delay_type=NEEDLE_STOP:0.3",
                                    "delay_type=LEASE_RENEW:0.1",
                                    "delay_type=ARM+NEEDLE_START:0.05"])
def test_a_session_recorded_under_delay_type_replays_into_the_sim_as_a_match(tmp_path, faults):
    data = station(tmp_path / "data")
    run_session(data, faults)
    replay = smp(data, "replay", "last", "--into-sim")
    assert replay.returncode == 0, out(replay)
    assert "match: session" in out(replay)


@pytest.mark.parametrize("faults", ["disconnect@3", "disconnect@1.2", "disconnect@3-4"])
def test_a_session_recorded_under_a_disconnect_is_compared_not_a_file_error(tmp_path, faults):
    data = station(tmp_path / "data")
    run = run_session(data, faults)
    assert run.returncode == 6, out(run)  # the pen lost mid-pass, as documented
    replay = smp(data, "replay", "last", "--into-sim")
    text = out(replay)
    assert "Free space" not in text and "failed" not in replay.stderr, text
    assert replay.returncode == 0, text
    assert "match: session" in text, text
