"""`pensim://?clock=...` and SMP_SIM_CLOCK (docs/simulator.md, "Virtual time"): real or virtual,
any other value refused by name, for any text a user can type."""

from __future__ import annotations

import urllib.parse

import pytest
import serial
from hypothesis import given
from hypothesis import strategies as st

import simulators  # noqa: F401  (registers the pensim:// handler)
from simulators.clock import SIM_CLOCK_ENV, RealClock, VirtualClock, sim_clock


def _open(url: str):
    return serial.serial_for_url(url, timeout=0)


@pytest.mark.parametrize(("value", "virtual"), [("virtual", True), ("real", False),
                                                (" Virtual ", True), ("REAL", False)])
def test_the_clock_option_picks_the_pens_clock(value, virtual, monkeypatch):
    monkeypatch.delenv(SIM_CLOCK_ENV, raising=False)
    port = _open("pensim://?clock=" + urllib.parse.quote(value))
    try:
        clock = port.simulator.clock
        assert isinstance(clock, VirtualClock if virtual else RealClock)
        assert (port.host_clock is clock) if virtual else port.host_clock is None
    finally:
        port.close()


def test_the_environment_is_the_default_and_the_url_wins(monkeypatch):
    monkeypatch.setenv(SIM_CLOCK_ENV, "virtual")
    for url, virtual in (("pensim://", True), ("pensim://?seed=2", True),
                         ("pensim://?clock=real", False)):
        port = _open(url)
        try:
            assert (port.host_clock is not None) is virtual, url
        finally:
            port.close()
    monkeypatch.setenv(SIM_CLOCK_ENV, "")  # empty: as if unset
    assert sim_clock() is None


@given(st.text(max_size=12))
def test_any_other_clock_is_refused_naming_it(text):
    if text.strip().lower() in ("real", "virtual"):
        return
    with pytest.raises(serial.SerialException) as refused:
        _open("pensim://?clock=" + urllib.parse.quote(text, safe=""))
    message = str(refused.value)
    assert "clock=" in message and "real, virtual" in message


def test_a_host_driven_pen_stands_still_until_its_host_moves_it(monkeypatch):
    monkeypatch.setenv(SIM_CLOCK_ENV, "virtual")
    port = _open("pensim://")
    try:
        clock = port.host_clock
        assert clock.host_driven and clock.now() == 0.0
        clock.advance(0.5)
        assert port.simulator.firmware.time_s() == pytest.approx(0.5)
    finally:
        port.close()
