"""Session 21: a session's recording keeps the pen's bytes in the order they crossed the port.

Bytes a reader took just as the recording's tap was set wait in the port's preamble and are
recorded by the next chunk's tap ("late"). The thread that found them counted them and wrote
them after letting go of the lock: preempted in between (a loaded machine), it let another
thread's next chunk be recorded first. A TELEMETRY recorded ahead of an earlier one replays as
a pen that rebooted: a session recorded beside busy loops replayed as a difference (CI).
The preemption is forced here; the real controller and port on the simulator's virtual clock.
"""

from __future__ import annotations

import dataclasses
import threading

import pytest

from smpdevice.replay.recorder import SessionRecording

pytestmark = pytest.mark.virtual_time

LATE, NEXT = b"late pen bytes", b"the reader's next chunk"
GENEROUS_S = 10.0  # bounds a broken run only


def test_late_preamble_bytes_are_recorded_before_the_next_chunk(sim, pen):
    port = pen.link.port
    recording = SessionRecording(pen, port)
    recording.begin()
    port.preamble.append(("pen", LATE))  # taken by a reader just as the tap was set
    written: list[bytes] = []
    add, go, writing_late = recording._add, threading.Event(), threading.Event()

    def preempted_add(channel: str, t_s: float, data: bytes) -> None:
        if data == LATE:  # the finder of the late bytes loses the CPU right here
            writing_late.set()
            go.wait(GENEROUS_S)
        written.append(data)
        add(channel, t_s, data)

    recording._add = preempted_add  # type: ignore[method-assign]
    finder = threading.Thread(target=recording._tap, args=("host", b"a host frame"))
    finder.start()
    assert writing_late.wait(GENEROUS_S)
    reader = threading.Thread(target=recording._tap, args=("pen", NEXT))
    reader.start()
    reader.join(1.0)  # before the fix it went first at once; now it waits for the late bytes
    go.set()
    finder.join(GENEROUS_S)
    reader.join(GENEROUS_S)
    assert written.index(LATE) < written.index(NEXT), written
    assert written.count(LATE) == 1  # recorded once


class _Collect:
    """What a recording hands its file, in order (the file's own writing is not tested here)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, bytes]] = []

    def add(self, channel: str, _t_s: float, data: bytes) -> None:
        self.entries.append((channel, bytes(data)))


def test_the_last_report_read_as_the_tap_was_set_is_recorded_once_in_its_place(sim, pen):
    """The pen's last report before the start is written first as the counters' base unless
    what is recorded has it: the report a reader took as the tap was set was written both as
    that base and, later, with the late bytes (after it: 24, then 23 and 24 again)."""
    from firmware_protocol import encode

    port = pen.link.port
    recording = SessionRecording(pen, port)
    recording.begin()
    last = recording._snapshot
    assert last is not None
    # the next report was read just as the tap was set (kept late by the port), and the
    # link had dispatched it by the time the recording took its last report
    report = dataclasses.replace(last, telemetry_seq=last.telemetry_seq + 1)
    late = encode(report, 0)
    port.preamble.append(("pen", late))
    recording._snapshot = report
    writer = _Collect()
    recording.open_file(writer)  # type: ignore[arg-type]
    recording._tap("pen", NEXT)
    pen_bytes = [data for channel, data in writer.entries if channel == "/pen"]
    assert pen_bytes.count(late) == 1, pen_bytes
    assert pen_bytes.index(late) < pen_bytes.index(NEXT)
