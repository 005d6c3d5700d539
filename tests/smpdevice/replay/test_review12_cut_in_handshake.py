"""A host killed as it connected leaves a recording that ends inside its handshake (review 12,
REVE-2: seen in the wild, `smp run` killed 1.1 s in left the /meta message alone). Nothing of
its session was recorded, so nothing can differ: the replay says `match` and why, never a
difference timed from the preamble's offset, never "could not connect"."""

from __future__ import annotations

import struct

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.frames import recording_path
from smpdevice.replay.runner import replay_session
from tests.smpdevice.replay.test_replay_crashed import crashed  # noqa: F401 (a fixture)

pytestmark = pytest.mark.virtual_time


def _message_ends(data: bytes) -> list[int]:
    """The end offset of each MCAP Message record (opcode 0x05), in file order."""
    out, i = [], 8  # past the magic
    while i + 9 <= len(data):
        op, size = data[i], struct.unpack("<Q", data[i + 1:i + 9])[0]
        if i + 9 + size > len(data):
            break
        if op == 0x05:
            out.append(i + 9 + size)
        i += 9 + size
    return out


@pytest.mark.parametrize("kept", [1, 2, 4])
def test_a_recording_cut_inside_its_handshake_replays_as_a_match(crashed, kept):  # noqa: F811
    into, sid = crashed
    path = recording_path(into / "passlog.sqlite", sid)
    data = path.read_bytes()
    path.write_bytes(data[:_message_ends(data)[kept - 1]])
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        report = replay_session(log, sid)
    assert report.match, report.difference
    assert any("ends before its session began" in note for note in report.notes), report.notes
    result = CliRunner().invoke(main, ["replay", sid, "--db", str(into / "passlog.sqlite")])
    assert result.exit_code == 0 and f"match: session {sid}" in result.output, result.output
    assert "1000000000" not in result.output
