"""A resumed session is recorded in parts, each linked by hash at its close (review 3, R06):
the first part (opening to the fault) and the resumed one each have their file, the close
record lists both with their SHA-256, and `smp replay` checks every part before refusing, by
name, what it cannot replay yet (a plan split across parts)."""
from __future__ import annotations

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


def test_every_part_is_recorded_and_linked_by_hash(data_dir, tmp_path):  # noqa: F811
    sid = resumed_and_closed(data_dir, tmp_path)
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        session = log.session(sid)
    parts = session.summary["recording"]
    assert [p["file"] for p in parts] == [f"{sid}.mcap", f"{sid}part2.mcap"]
    folder = recordings_dir(data_dir / "passlog.sqlite")
    for part in parts:
        assert file_sha256(folder / part["file"]) == part["sha256"]
    replay = smp("replay", sid)
    assert replay.exit_code != 0
    assert "was resumed" in replay.output and "match the hashes" in replay.output, replay.output


def test_a_changed_part_is_named(data_dir, tmp_path):  # noqa: F811
    sid = resumed_and_closed(data_dir, tmp_path)
    second = recordings_dir(data_dir / "passlog.sqlite") / f"{sid}part2.mcap"
    second.write_bytes(second.read_bytes() + b"x")
    replay = smp("replay", sid)
    assert replay.exit_code != 0
    assert "does not match the hash" in replay.output and second.name in replay.output, (
        replay.output)
