"""Every session records its raw frames (MCAP), bounded, crash-safe, linked by hash."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_protocol import MsgType, StreamDecoder
from smpdevice.passlog import PassOutcome
from smpdevice.records import frames
from smpdevice.records.frames import (
    FrameWriter,
    RecordingError,
    file_sha256,
    read_recording,
)
from tests.smpdevice.replay.conftest import record_session

pytestmark = pytest.mark.virtual_time


def _frames(data: list[bytes]) -> list:
    decoder = StreamDecoder()
    return [f for chunk in data for f in decoder.feed(chunk)]


def test_every_session_records_its_frames_linked_by_hash(pen, passlog):
    rec = record_session(pen, passlog)
    linked = passlog.session(rec.session_id).summary["recording"]  # in the close record
    assert linked["file"] == f"{rec.session_id}.mcap"
    assert rec.path.parent == Path(passlog.path).parent / "recordings"
    assert linked["sha256"] == file_sha256(rec.path)
    assert linked["truncated"] is None
    assert stat.S_IMODE(rec.path.stat().st_mode) == 0o600
    recording = read_recording(rec.path)
    assert recording.finished and recording.damaged is None
    assert recording.meta["session_id"] == rec.session_id
    assert recording.meta["key_fingerprint"] == passlog.key_fingerprint
    host = _frames([e.data for e in recording.channel("/host")])
    types = [f.message.TYPE for f in host]
    # the decisions of 3 passes, in order, both ways, with timestamps
    assert types.count(MsgType.NEEDLE_START) == 3 and types.count(MsgType.NEEDLE_STOP) >= 3
    pen_frames = _frames([e.data for e in recording.channel("/pen")])
    assert sum(f.message.TYPE == MsgType.TELEMETRY for f in pen_frames) > 50
    times = [e.t_s for e in recording.entries if e.channel in ("/host", "/pen")]
    assert times == sorted(times) and times[-1] > 0.9  # 3 passes of 0.3 s, virtual time
    # the handshake from before the session, for a replay to connect
    pre = _frames([e.data for e in recording.channel("/preamble/host")])
    assert pre[0].message.TYPE == MsgType.IDENTIFY_REQUEST
    states = [e.data for e in recording.channel("/state")]
    assert b'"new": "running"' in states[1]


def test_size_cap_ends_with_a_truncated_marker(tmp_path):
    path = tmp_path / "r.mcap"
    writer = FrameWriter(path, {"session_id": "S1"}, start_s=0.0, max_bytes=16384)
    for i in range(2000):
        writer.add("/pen", i * 0.01, bytes(40))
    sealed = writer.seal()
    assert sealed.truncated and "size cap of 16384 bytes" in sealed.truncated
    assert path.stat().st_size <= 16384
    recording = read_recording(path)
    assert recording.finished and recording.truncated == sealed.truncated
    assert recording.entries[-1].channel == "/marker"
    assert 0 < len(recording.channel("/pen")) < 2000


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_crash_leaves_a_readable_recording_up_to_the_last_flush(tmp_path):
    path = tmp_path / "r.mcap"
    writer = FrameWriter(path, {"session_id": "S1"}, start_s=0.0)
    try:
        for i in range(100):
            writer.add("/host", i * 0.01, bytes([i]))
        # never sealed (a crash): what was flushed reads back, in order
        _wait_for(lambda: len(read_recording(path).entries) == 100)
        crashed = tmp_path / "crashed.mcap"
        shutil.copyfile(path, crashed)
        recording = read_recording(crashed)
        assert not recording.finished
        assert [e.data for e in recording.entries] == [bytes([i]) for i in range(100)]
    finally:
        writer.seal()


@pytest.fixture(scope="module")
def sealed_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "r.mcap"
    writer = FrameWriter(path, {"session_id": "S1"}, start_s=0.0)
    for i in range(40):
        writer.add("/host" if i % 3 else "/pen", i * 0.01, bytes(range(i % 7 + 1)))
    writer.add_json("/state", 0.5, {"old": "idle", "new": "armed", "reason": "armed"})
    writer.seal()
    return path.read_bytes()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.booleans())
def test_any_cut_or_damage_reads_as_a_prefix_or_a_clear_error(sealed_file, tmp_path, cut, flip):
    data = bytearray(sealed_file[:cut % (len(sealed_file) + 1)])
    if flip and data:
        data[len(data) // 2] ^= 0xFF
    path = tmp_path / "cut.mcap"
    path.write_bytes(bytes(data))
    full = read_recording_bytes(sealed_file, tmp_path)
    try:
        recording = read_recording(path)
    except RecordingError as exc:
        assert "recording" in str(exc)
        return
    if not flip:
        assert [e.data for e in recording.entries] == [
            e.data for e in full.entries[:len(recording.entries)]]


def read_recording_bytes(data: bytes, tmp_path: Path):
    path = tmp_path / "full.mcap"
    path.write_bytes(data)
    return read_recording(path)


def test_a_file_of_another_format_is_refused_clearly(tmp_path):
    path = tmp_path / "x.mcap"
    path.write_bytes(b"not an mcap file at all" * 10)
    with pytest.raises(RecordingError, match="not a readable smpdevice frame recording"):
        read_recording(path)


def test_a_write_error_stops_the_recording_never_the_treatment(pen, passlog, monkeypatch):
    def disk_full(self, channel, t_s, data):
        if channel != "/meta":
            raise OSError(28, "No space left on device")
        return original(self, channel, t_s, data)

    original = frames.FrameWriter._write
    monkeypatch.setattr(frames.FrameWriter, "_write", disk_full)
    rec = record_session(pen, passlog)
    passes = passlog.passes(rec.session_id)
    assert [p.outcome for p in passes] == [PassOutcome.completed] * 3
    assert rec.summary["recording"]["truncated"].startswith("write error")
    assert rec.summary["recording"]["sha256"] == file_sha256(rec.path)


def test_a_failing_tap_is_removed_and_the_link_goes_on(pen):
    def broken(direction, data):
        raise RuntimeError("tap broke")

    port = pen.link.port
    port.set_tap(broken)
    pen.set_zone("crown")
    pen.set_setpoints(depth_mm=0.5, speed_hz=90, duty_pct=40, period_ms=120)  # a round trip
    assert port.tap is None
    assert pen.setpoints is not None


def test_recordings_dir_is_private(pen, passlog):
    rec = record_session(pen, passlog, None)
    assert stat.S_IMODE(os.stat(rec.path.parent).st_mode) == 0o700
