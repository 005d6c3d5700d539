"""A resumed session is recorded in parts, each linked by hash at its close (review 3, R06):
the first part (opening to the fault) and the resumed one each have their file, the close
record lists both with their SHA-256, and `smp replay` checks every part, then replays them
one by one, each into a fresh controller as its run started it (the passes left at the
resume), naming the part of the first difference."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulators import PenSimulator
from smpdevice.passlog import PassLog
from smpdevice.records.frames import file_sha256, recordings_dir
from tests.smpdevice.cli.test_cli_resume import interrupted_session, smp
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    calibrate_default_pen,
    data_dir,
)


def resumed_and_closed(data_dir, tmp_path) -> str:  # noqa: F811
    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="r06-resume") as sim:
        sid = interrupted_session(data_dir, tmp_path, sim)
        sim.clear("jam")
        assert smp("clear", "--port", sim.url, "--yes").exit_code == 0
        resumed = smp("run", "--resume", sid, "-t", "bo", "--port", sim.url)
        assert resumed.exit_code == 0, resumed.output
    return sid


# `resumed`: a session made by two real-time `smp run`s with a jam thread between (a replay
# difference once beside busy loops): its tests run in the realtime pass.
REALTIME = pytest.mark.realtime


@pytest.fixture(scope="session")
def resumed_master(tmp_path_factory, _smp_key_dir) -> tuple[Path, str]:
    """One session jammed, resumed and closed (two real-time `smp run`s: the costly part),
    made once (per worker: session-scoped, so `make test` does not make it again each time a
    worker comes back to this file) for the tests that only read it or change their own copy
    (`resumed`). Made before any test's own settings: it sets what tests/conftest.py's
    autouse fixtures do."""
    import structlog

    root = tmp_path_factory.mktemp("resumed")
    data = root / "data"
    data.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SMP_CONFIG", str(root / "absent.toml"))
        mp.setenv("SMP_KEY_DIR", str(_smp_key_dir))  # the run's key, as every test's
        mp.setenv("SMP_DATA_DIR", str(data))
        mp.setenv("SMP_LOG_LEVEL", "error")
        for name in ("SMP_PORT", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH"):
            mp.delenv(name, raising=False)
        try:
            sid = resumed_and_closed(data, root)
        finally:
            structlog.reset_defaults()  # as tests/smpdevice/conftest.py does after a test
    return data, sid


@pytest.fixture
def resumed(resumed_master, data_dir) -> str:  # noqa: F811
    """A copy of that data directory (pass log, recordings, calibrations) as this test's own
    SMP_DATA_DIR: what one test changes no other sees, in any order. The session's id."""
    master, sid = resumed_master
    shutil.copytree(master, data_dir, dirs_exist_ok=True)
    return sid


@REALTIME
def test_every_part_is_recorded_and_linked_by_hash(data_dir, resumed):  # noqa: F811
    sid = resumed
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        session = log.session(sid)
    parts = session.summary["recording"]
    assert [p["file"] for p in parts] == [f"{sid}.mcap", f"{sid}part2.mcap"]
    folder = recordings_dir(data_dir / "passlog.sqlite")
    for part in parts:
        assert file_sha256(folder / part["file"]) == part["sha256"]
    replay = smp("replay", sid)
    assert replay.exit_code == 0, replay.output
    assert replay.output.startswith(f"match: session {sid}, 2 recorded parts"), replay.output


@REALTIME
def test_a_change_seen_only_in_the_resumed_part_names_that_part(resumed, monkeypatch):
    """Part 1 jams in its first pass (zone top); only the resumed run reaches the hairline
    (0.32 mm): a controller that now converts shallow depths 10 um deeper differs there."""
    from smpdevice.control.calibration import Calibration

    sid = resumed
    original = Calibration.to_actuator_mm
    monkeypatch.setattr(Calibration, "to_actuator_mm", lambda self, depth_mm: original(
        self, depth_mm) + (0.01 if depth_mm < 0.35 else 0.0))
    replay = smp("replay", sid)
    assert replay.exit_code == 1, replay.output
    assert f"first difference: part 2 ({sid}part2.mcap): command #" in replay.output, (
        replay.output)
    assert "expected SetSetpoints" in replay.output


@REALTIME
def test_into_sim_replays_a_resumed_session_part_by_part(resumed):
    """`--into-sim` no longer refuses a resumed session: it replays part 1 and says per part
    whether the pen side matches. This jam was injected by hand (not in the recording, nor
    in a fault spec): the simulator does not jam, so part 1 differs and part 2 is not
    replayed on a simulator that is no longer the recorded pen
    (tests/smpdevice/replay/test_into_sim_parts.py has the parts that match)."""
    sid = resumed
    replay = smp("replay", sid, "--into-sim")
    assert replay.exit_code == 1, replay.output
    assert f"part 1 ({sid}.mcap): pen side differs" in replay.output
    assert "1 later part(s) not replayed" in replay.output
    assert f"first difference: part 1 ({sid}.mcap): pen event #0" in replay.output
    assert "FAULT_LATCHED" in replay.output


@REALTIME
def test_a_changed_part_is_named(data_dir, resumed):  # noqa: F811
    sid = resumed
    second = recordings_dir(data_dir / "passlog.sqlite") / f"{sid}part2.mcap"
    second.write_bytes(second.read_bytes() + b"x")
    replay = smp("replay", sid)
    assert replay.exit_code != 0
    assert "does not match the hash" in replay.output and second.name in replay.output, (
        replay.output)


@REALTIME
def test_a_resumed_session_interrupted_again_replays_its_parts_unverified(data_dir,  # noqa: F811
                                                                         tmp_path):
    """Resumed, then jammed again: still open, so no hash links its parts; both are found
    beside the pass log and replayed, and the replay says it could not verify them."""
    from tests.smpdevice.cli.test_cli_resume import jam_when_running

    calibrate_default_pen(data_dir)
    with PenSimulator(seed=0, name="r2-twice") as sim:
        sid = interrupted_session(data_dir, tmp_path, sim)
        sim.clear("jam")
        assert smp("clear", "--port", sim.url, "--yes").exit_code == 0
        thread = jam_when_running(sim)
        resumed = smp("run", "--resume", sid, "-t", "bo", "--port", sim.url)
        thread.join(timeout=60)
        assert resumed.exit_code == 4, resumed.output
    replay = smp("replay", sid)
    assert replay.exit_code == 0, replay.output
    assert "still open" in replay.output and "unverified" in replay.output
    assert f"match: session {sid}, 2 recorded parts" in replay.output


@pytest.mark.virtual_time
def test_a_resumed_part_stopped_by_the_technician_replays(sim, pen, passlog):
    """Both at once, on virtual time: part 1 ends on a jam, part 2 (the resume) is stopped
    between passes by the technician. Each part replays with its own plan and inputs."""
    from smpdevice.replay.runner import replay_session
    from smpdevice.sessions.resume import resume_session
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    from tests.smpdevice.replay.conftest import CLEAR, short_profile
    from tests.smpdevice.virtual_time import after

    first = TreatmentSession.open(pen, passlog, short_profile(0.4, passes=4), technician="ana",
                                  screening=parse_screening(CLEAR))
    after(sim.clock, 0.6, lambda: sim.inject("jam"))  # in the second pass
    first.play()
    first.suspend()
    sim.clear("jam")
    pen.clear_faults()
    second = resume_session(pen, passlog, first.session_id, technician="bo")
    second.play(should_stop=lambda: len(second.results) >= 1)
    second.close()
    sid = first.session_id
    parts = passlog.session(sid).summary["recording"]
    assert [p["file"] for p in parts] == [f"{sid}.mcap", f"{sid}part2.mcap"]
    report = replay_session(passlog, sid)
    assert report.parts == 2
    assert report.match, (report.difference, report.notes)
