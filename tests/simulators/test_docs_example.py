"""The example of docs/simulator.md, run as written."""

import pytest
import serial

from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, FirmwareState, NackReason
from simulators import DeviceFault


def test_lease_lapse_stops_the_needle(pen_sim, pen_host):
    pen_host.start_needle(lease_ms=100)
    pen_sim.advance(0.1)                                   # exactly the lease
    assert pen_sim.firmware.state is FirmwareState.FAULT
    assert pen_sim.firmware.faults == Fault.LEASE_EXPIRED


@pytest.mark.pensim(seed=7)
def test_jam_must_be_fixed_before_clearing(pen_sim, pen_host):
    pen_host.start_needle(lease_ms=2000)
    pen_sim.advance(0.2)
    pen_sim.inject(DeviceFault.JAM)
    pen_sim.advance(0.1)
    assert pen_host.request(m.ClearFaults()).reason == NackReason.CONDITION_ACTIVE


def test_my_tool_over_pyserial(pen_sim_url):
    with serial.serial_for_url(pen_sim_url, timeout=0.5) as port:
        assert port.is_open


def test_the_model_table_lists_every_pen_model_parameter_with_its_default():
    import dataclasses
    import re
    from pathlib import Path

    from simulators import PenModel

    doc = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"
    table = doc.read_text().split("### Every model and its parameters", 1)[1].split("\n\n")[1]
    for f in dataclasses.fields(PenModel):
        assert f"`{f.name}`" in table, f"docs/simulator.md does not list PenModel.{f.name}"
        if isinstance(f.default, float) and f.name not in ("offset_mm", "gain"):
            shown = re.search(rf"`{f.name}` \(?([0-9.]+)", table)
            assert shown and float(shown.group(1)) == f.default, f.name
