"""A recording as a conversation script: robust to any bytes, tolerant only of what may differ."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol import encode
from firmware_protocol.messages import Ack, Arm, LeaseRenew, NeedleStart
from smpdevice.replay.script import build_script

entries = st.lists(st.tuples(st.floats(0, 100, allow_nan=False),
                             st.sampled_from(["host", "pen"]),
                             st.binary(max_size=64)), max_size=40)


@settings(max_examples=80, deadline=None)
@given(entries)
def test_any_bytes_make_a_script_never_an_exception(chunks):
    script = build_script(sorted(chunks, key=lambda c: c[0]))
    assert script.steps[0].index is None
    assert all(step.command is not None for step in script.decisions)


def test_renewals_and_retransmissions_are_not_decisions():
    entries = [
        (0.00, "host", encode(LeaseRenew(200), 1)),
        (0.00, "pen", encode(Ack(acked_type=9), 1)),
        (0.01, "host", encode(Arm(), 2)),
        (0.05, "host", encode(Arm(), 2)),  # retransmitted: its reply was late
        (0.06, "pen", encode(Ack(acked_type=4), 2)),
        (0.07, "host", encode(NeedleStart(), 3)),
        (0.07, "pen", encode(Ack(acked_type=6), 3)),
    ]
    script = build_script(entries)
    assert [type(s.command.message).__name__ for s in script.decisions] == ["Arm", "NeedleStart"]
    assert script.decisions[0].pen[0].reply_to == 0  # the reply follows its decision
    assert script.housekeeping_reply(9, 0) == Ack(acked_type=9)
    assert script.host_frames == 4
