"""Review 20 (F8): the scenario vectors say which pen they assume, and a harness can check it."""

from __future__ import annotations

import dataclasses

from firmware_protocol import messages as m
from firmware_protocol.codes import Capability
from firmware_protocol.scenario_pen import ASSUMED_PEN, unmet
from firmware_protocol.scenarios import SCENARIOS_FILE, load
from simulators.clock import VirtualClock
from simulators.firmware import PenFirmware
from simulators.pen_model import PenModel


def _identify(**model: object) -> m.Identify:
    fw = PenFirmware(PenModel(**model), VirtualClock())  # type: ignore[arg-type]
    return fw._identify_request(m.IdentifyRequest())  # type: ignore[return-value]


def test_the_simulated_pen_is_the_pen_the_scenarios_assume() -> None:
    assert unmet(_identify()) == []
    assert unmet(_identify(footswitch_fitted=False), frozenset({"FOOTSWITCH"})) == []


def test_a_pen_outside_the_assumptions_is_named_field_by_field() -> None:
    short = unmet(_identify(lease_max_ms=1000, depth_max_um=900))
    assert [u.split("=")[0] for u in short] == ["depth_max_um", "lease_max_ms"]
    no_pedal = dataclasses.replace(_identify(), capabilities=int(Capability.CALIBRATION_TABLE))
    assert unmet(no_pedal) == ["capability FOOTSWITCH missing"]
    assert unmet(_identify(), frozenset({"FOOTSWITCH"})) == ["capability FOOTSWITCH present"]


def test_every_limit_field_named_is_an_identify_field_and_pen_keys_are_known() -> None:
    fields = {name for name, _ in m.Identify.WIRE}
    assert {f for f, _, _ in ASSUMED_PEN} <= fields
    for scenario in load(SCENARIOS_FILE):
        assert set(scenario.get("pen", {})) <= {"without"}, scenario["name"]
        assert set(scenario.get("pen", {}).get("without", [])) <= {c.name for c in Capability}
