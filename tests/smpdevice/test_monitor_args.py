"""The embeddable `Monitor` refuses an integrator's mistake with a typed error naming the
argument (review 9a R10), never a builtin ValueError / AttributeError from deep inside, and
accepts what docs/integration.md shows (`Monitor(port)`, `Monitor(pen=pen)`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController
from smpdevice.monitor import Monitor
from smpdevice.ui.monitor_view import render, render_text
from tests.smpdevice.virtual_time import virtual_sim


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(("kwargs", "named"), [
    ({}, "port=None and pen=None"),
    ({"pen": 5}, "pen=5"),
    ({"pen": "pensim://x"}, "pen='pensim://x'"),
    ({"port": 5}, "port=5"),
    ({"port": ""}, "port=''"),
    ({"port": "pensim://a\nb"}, "port="),
    ({"port": "pensim://x", "calibration": "cal.json"}, "calibration="),
    ({"port": "pensim://x", "load_calibration": "yes"}, "load_calibration="),
    ({"port": "pensim://x", "clock": 1.5}, "clock=1.5"),
], ids=["nothing", "pen-int", "pen-str", "port-int", "port-empty", "port-newline",
        "calibration-str", "load_calibration-str", "clock-float"])
def test_a_bad_construction_is_an_invalid_argument_naming_it(kwargs, named):
    with pytest.raises(InvalidArgument) as caught:
        Monitor(**kwargs)
    assert named in str(caught.value)


@given(st.one_of(st.integers(), st.floats(), st.binary(), st.lists(st.integers()),
                 st.dictionaries(st.text(), st.integers()), st.booleans()))
def test_any_non_controller_pen_is_refused(value):
    with pytest.raises(InvalidArgument, match="^pen="):
        Monitor(pen=value)


def test_a_port_alone_is_accepted_and_not_connected_yet():
    mon = Monitor("pensim://nowhere-yet")
    assert mon.port == "pensim://nowhere-yet" and mon.pen is None


def test_a_connected_controller_is_shown_under_its_port():
    with virtual_sim(seed=3) as sim, PenController.connect(sim.url, clock=sim.clock) as pen:
        mon = Monitor(pen=pen)
        assert mon.port == pen.port_url
        assert "smp monitor" in render_text(mon.snapshot())
        with pytest.raises(InvalidArgument, match="^width="):
            render_text(mon.snapshot(), width=0)


def test_render_refuses_what_is_not_a_snapshot():
    with pytest.raises(InvalidArgument, match="^snap="):
        render({"port": "x"})  # type: ignore[arg-type]
