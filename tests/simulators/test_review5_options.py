"""REVIEW5 2 and 4: the simulator's user-set options are range-checked where they enter.

A lease_max_ms outside the u16 of IDENTIFY used to give a pen whose every IDENTIFY reply died in
encode (a struct.error traceback; the host saw a mute pen). Now the pensim:// URL, `smp sim` and
PenSimulator itself refuse it with one line naming the option, the value and the range.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

import simulators  # noqa: F401 - registers the pensim:// handler
from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.transport import TransportError, open_port


@pytest.mark.parametrize(("query", "option", "allowed"), [
    ("lease=-5", "lease='-5'", "1..65535"),
    ("lease=99999999", "lease='99999999'", "1..65535"),
    ("lease=0", "lease='0'", "1..65535"),
    ("lease=1_0", "lease='1_0'", "1..65535"),
    ("telemetry=nan", "telemetry='nan'", "0..1000"),
    ("telemetry=1001", "telemetry='1001'", "0..1000"),
    ("baud=-1", "baud='-1'", "1..12000000"),
    ("seed=abc", "seed='abc'", "whole number"),
])
def test_bad_pensim_option_is_a_transport_error_naming_it(query, option, allowed) -> None:
    with pytest.raises(TransportError) as info:
        open_port(f"pensim://?{query}")
    message = str(info.value)
    assert option in message and allowed in message, message


def test_good_pensim_options_still_open() -> None:
    port = serial.serial_for_url("pensim://?seed=-3&lease=65535&telemetry=1000&baud=115200")
    try:
        assert port.simulator.model.lease_max_ms == 65535
        assert port.simulator.model.telemetry_default_hz == 1000
    finally:
        port.close()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_any_lease_text_opens_or_is_refused_cleanly(text: str) -> None:
    try:
        port = serial.serial_for_url("pensim://?lease=" + quote(text, safe=""))
    except serial.SerialException as exc:
        assert "lease=" in str(exc)
        return
    try:
        assert 1 <= port.simulator.model.lease_max_ms <= 65535
    finally:
        port.close()


@pytest.mark.parametrize(("field", "value"), [
    ("lease_max_ms", -5), ("lease_max_ms", 70_000), ("telemetry_default_hz", -1),
])
def test_pen_simulator_refuses_a_model_it_could_not_serve(field, value) -> None:
    with pytest.raises(ValueError, match=f"{field}={value} is out of range"):
        PenSimulator(model=PenModel(**{field: value}))


def test_pen_simulator_refuses_a_zero_baud() -> None:
    with pytest.raises(ValueError, match="baud=0 is out of range"):
        PenSimulator(baud=0)


@pytest.mark.parametrize("args", [
    ["--lease-max-ms", "-5"], ["--lease-max-ms", "99999999999999999999"],
    ["--telemetry-hz", "5000"], ["--baud", "-1"],
])
def test_smp_sim_refuses_out_of_range_options_before_starting(args) -> None:
    # A subprocess: a simulator that wrongly starts runs until killed (the timeout fails it).
    result = subprocess.run([sys.executable, "-m", "smpdevice", "sim", "--tcp", "0", *args],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    assert args[0] in result.stderr and "range" in result.stderr
    assert "Traceback" not in result.stderr
