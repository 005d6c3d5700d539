"""Review 16 QA: a resumed session still open whose parts' files are missing or swapped.

docs/simulator.md: bad input (a missing recording) gets one line and exit 2. Each resumption
recorded a part: `smp replay` of an open resumed session with part 2's file gone used to say
`match` for part 1 alone (exit 0), and part 2's file under part 1's name was replayed as the
whole session. Every resumption's part must be there, and each file's `/meta` part must be
the part its name and position say."""

from __future__ import annotations

import shutil

import pytest

from tests.smpdevice.replay.rev16_station import last_session_id, out, run_session, smp, station

SPEC = "jam@3-3.1"  # each run's pen jams in its first pass: the session stays open


@pytest.fixture(scope="module")
def built_resumed_twice(tmp_path_factory):
    """An open session with parts 1 to 3 (two resumptions), each cut by a jam: recorded once
    per test process (three `smp run`s were most of each test's cost), never written again."""
    base = tmp_path_factory.mktemp("resumed-twice")
    data = station(base / "data")
    assert run_session(data, SPEC).returncode == 4
    sid = last_session_id(data)
    for _ in range(2):
        assert run_session(data, SPEC, sid).returncode == 4
    assert (data / "recordings" / f"{sid}part3.mcap").is_file()
    whole = smp(data, "replay", sid)
    assert whole.returncode == 0 and "3 recorded parts" in out(whole), out(whole)
    return base, sid


@pytest.fixture
def resumed_twice(built_resumed_twice, tmp_path):
    """This test's own copy of that station (its data directory and the key that signed its
    pass log, rev16_station's `keys` beside it): each test deletes or moves parts."""
    base, sid = built_resumed_twice
    for name in ("data", "keys"):
        shutil.copytree(base / name, tmp_path / name)
    data = tmp_path / "data"
    return data, sid, data / "recordings"


@pytest.mark.parametrize("gone", [2, 3])
def test_a_deleted_part_of_an_open_resumed_session_is_one_line_exit_2(resumed_twice, gone):
    data, sid, recordings = resumed_twice
    (recordings / f"{sid}part{gone}.mcap").unlink()
    replay = smp(data, "replay", sid)
    assert replay.returncode == 2, out(replay)
    assert f"part {gone}" in replay.stderr and "missing" in replay.stderr, out(replay)
    assert "Traceback" not in out(replay)


def test_a_later_parts_file_in_an_earlier_parts_place_is_refused(resumed_twice):
    data, sid, recordings = resumed_twice
    shutil.copyfile(recordings / f"{sid}part2.mcap", recordings / f"{sid}.mcap")  # over part 1
    replay = smp(data, "replay", sid)
    assert replay.returncode == 2, out(replay)
    assert "records part 2" in replay.stderr, out(replay)


def test_parts_swapped_between_their_names_are_refused(resumed_twice):
    data, sid, recordings = resumed_twice
    two, three = recordings / f"{sid}part2.mcap", recordings / f"{sid}part3.mcap"
    two.replace(recordings / "swap.mcap")
    three.replace(two)
    (recordings / "swap.mcap").replace(three)
    replay = smp(data, "replay", sid)
    assert replay.returncode == 2, out(replay)
    assert "records part 3" in replay.stderr, out(replay)
