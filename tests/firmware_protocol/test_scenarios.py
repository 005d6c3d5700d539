"""The simulator's firmware against every scenario vector, and the decoder against its vectors.

The scenario expectations come from rules.py and the spec (firmware_protocol/scenarios.py), so
this is where the simulator is held to the settled spec (issue 15 part 1).
"""

from __future__ import annotations

from typing import Any

import pytest

from firmware_protocol import messages as m
from firmware_protocol import rules
from firmware_protocol.codes import FirmwareState, MsgType
from firmware_protocol.describe import to_jsonable
from firmware_protocol.frame import StreamDecoder, decode_frame
from firmware_protocol.scenario_pen import unmet
from firmware_protocol.scenarios import (
    DECODER_FILE,
    SCENARIOS_FILE,
    build_decoder_vectors,
    build_scenarios,
    load,
    render,
)
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel

from .helpers import check_each

SCENARIOS = load(SCENARIOS_FILE)
DECODER = load(DECODER_FILE)


def _apply(fw: PenFirmware, step: dict[str, Any]) -> None:
    if "send" in step:
        fw.receive_now(bytes.fromhex(step["send"]["hex"]))
    elif "send_hex" in step:
        for part in step["send_hex"]:
            fw.receive_now(bytes.fromhex(part))
    elif "advance_ms" in step:
        for _ in range(step["advance_ms"]):
            fw.step()
    else:
        name = step["condition"]
        if name == "power_reset":
            fw.power_reset()
        elif name.startswith("pedal_"):
            fw.physics.cond.pedal_down = name == "pedal_down"
        else:
            fw.physics.cond.cartridge_present = name == "cartridge_inserted"


def _seen(fw: PenFirmware) -> list[dict[str, Any]]:
    out = []
    for raw in fw.take_frames():
        f = decode_frame(raw)
        if f.message.TYPE != MsgType.TELEMETRY:
            out.append({"type": MsgType(f.message.TYPE).name, "seq": f.seq,
                        "fields": to_jsonable(f.message)})
    return out


def _matches(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return (got["type"], got["seq"]) == (want["type"], want["seq"]) and all(
        got["fields"].get(k) == v for k, v in want["fields"].items()
    )


def test_simulator_follows_every_scenario() -> None:
    """Each scenario on a fresh firmware; every one that fails is named. One test, not 120:
    as one test per scenario, pytest-xdist's cost per test was most of their CPU."""
    check_each(SCENARIOS, _follow, lambda scenario: scenario["name"])
    assert len(SCENARIOS) > 100


def _model(scenario: dict[str, Any]) -> PenModel:
    """The pen a scenario assumes: ASSUMED_PEN, less the capabilities its "pen" says it lacks
    (of the simulated pen's, only FOOTSWITCH can be left out)."""
    without = set(scenario.get("pen", {}).get("without", []))
    assert without <= {"FOOTSWITCH"}, (scenario["name"], without)
    return PenModel(footswitch_fitted="FOOTSWITCH" not in without)


def _follow(scenario: dict[str, Any]) -> None:
    fw = PenFirmware(_model(scenario), VirtualClock())  # power-on, BOOTING, on a virtual clock
    identify = fw._identify_request(m.IdentifyRequest())
    assert unmet(identify, frozenset(scenario.get("pen", {}).get("without", []))) == [], \
        scenario["name"]
    for i, step in enumerate(scenario["steps"]):
        _apply(fw, step)
        got, want = _seen(fw), step["expect"]
        what = {k: v for k, v in step.items() if k != "expect"}
        where = f"{scenario['name']} step {i} ({what})"
        assert len(got) == len(want) and all(map(_matches, got, want)), (where, got, want)
        assert fw.state.name == step["state"], where


def test_scenarios_cover_every_cell_of_the_state_table_and_the_behaviours() -> None:
    names = {s["name"] for s in SCENARIOS}
    for t in rules.ACCEPTED_IN:
        for s in FirmwareState:
            assert f"table_{t.name.lower()}_in_{s.name.lower()}" in names
    for needed in ("duplicate", "lease_lapse", "estop", "cartridge", "power_reset", "seq_0",
                   "footswitch_release", "footswitch_required_start_refused",
                   "footswitch_optional", "estop_supersedes_an_earlier_clear_faults_of_its_read",
                   "estop_acts_before_an_earlier_needle_start", "estop_while_booting_cleared",
                   "latch_together", "judged_before_the_footswitch", "lease_lapse_is_an_edge",
                   "nack_booting_stays_cached", "footswitch_mode_is_checked_before"):
        assert any(needed in n for n in names), needed


def test_scenario_and_decoder_files_are_what_the_generator_makes() -> None:
    # After a deliberate change: python -m firmware_protocol.scenarios --write, review the diff.
    assert render(build_scenarios()) == render(SCENARIOS)
    assert render(build_decoder_vectors()) == render(DECODER)


@pytest.mark.parametrize("vector", DECODER, ids=[v["name"] for v in DECODER])
def test_decoder_vector_holds_for_every_split(vector: dict[str, Any]) -> None:
    stream = b"".join(bytes.fromhex(c) for c in vector["chunks"])
    splits = [[bytes.fromhex(c) for c in vector["chunks"]], [stream],
              [stream[i : i + 1] for i in range(len(stream))]]
    for chunks in splits:
        d = StreamDecoder()
        frames = [f for c in chunks for f in d.feed(c)]
        if vector["expire"]:
            frames += d.expire()
        assert [bytes.fromhex(h) for h in vector["frames"]] == [
            stream[stream.find(bytes.fromhex(h)):][: len(bytes.fromhex(h))]
            for h in vector["frames"]
        ]  # every expected frame is literally in the stream
        assert [decode_frame(bytes.fromhex(h)) for h in vector["frames"]] == frames
        stats = {k: getattr(d.stats, k) for k in vector["stats"]}
        assert (stats, d.buffered) == (vector["stats"], vector["held"])


def test_decoder_vectors_say_what_the_spec_says() -> None:
    by = {v["name"]: v for v in DECODER}
    nested = bytes.fromhex(by["nested_whole"]["chunks"][0])
    assert by["nested_whole"]["frames"] == by["nested_split"]["frames"] == [nested.hex()]
    assert len(by["nested_outer_damaged"]["frames"]) == 1
    assert by["nested_outer_damaged"]["stats"]["bad_crc"] == 1
    assert by["truncated_holds_next"]["frames"] == [] and by["truncated_holds_next"]["held"]
    assert by["truncated_then_quiet"]["stats"]["truncated"] == 1
    assert by["trailing_aa_held"]["held"] == 1
    for name in ("bad_crc", "bad_length", "unknown_type"):
        assert by[name]["stats"][name] == 1 and len(by[name]["frames"]) == 1
