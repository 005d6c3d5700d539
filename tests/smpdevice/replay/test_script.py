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


def _input(kind: str = "stop", state: str = "running") -> bytes:
    import json

    return json.dumps({"kind": kind, "state": state}).encode()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["decision", "renewal", "again", "input", "junk"]),
                max_size=40))
def test_an_input_is_placed_after_the_decisions_recorded_before_it(events):
    """Whatever comes around it (renewals, retransmissions, garbage), an input sits after
    exactly the decisions recorded before it; an unknown input is skipped, not guessed."""
    from firmware_protocol.messages import SetTelemetryRate

    entries: list[tuple[float, str, bytes]] = []
    expected: list[int] = []
    decisions, seq = 0, 0
    for n, what in enumerate(events):
        t_s = n * 0.01
        if what == "decision":
            seq += 1
            entries.append((t_s, "host", encode(SetTelemetryRate(rate_hz=seq), seq)))
            decisions += 1
        elif what == "renewal":
            seq += 1
            entries.append((t_s, "host", encode(LeaseRenew(200), seq)))
        elif what == "again" and seq and entries and entries[-1][1] == "host":
            entries.append((t_s, "host", entries[-1][2]))  # a retransmission
        elif what == "input":
            entries.append((t_s, "input", _input()))
            expected.append(decisions)
        else:
            entries.append((t_s, "input", b'{"kind": "launch"}'))  # unknown: skipped
    script = build_script(entries)
    assert len(script.decisions) == decisions
    assert [i.after for i in script.inputs] == expected
    assert all(i.kind == "stop" and i.timed for i in script.inputs)
