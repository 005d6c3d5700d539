"""The fault spec refuses what the simulator cannot run (review 3, R04/R07): NaN or infinite
times killed the simulator's thread, `~1e9` flooded it with events, `@5-2` was taken. Every
value is finite and bounded, or the item is refused with a FaultSpecError naming it, the value
and the range; `smp sim --help` lists the fault kinds from the parser's own tables."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.faults import (
    LINK_EVENTS,
    MAX_RATE_PER_S,
    MAX_TIME_S,
    DeviceFault,
    FaultPlan,
    FaultSpecError,
    RandomFault,
    ScheduledFault,
    parse_fault_spec,
)
from smpdevice.cli import main

NAMES = [*(f.value for f in DeviceFault), *LINK_EVENTS]
BAD = ["nan", "inf", "-inf", "-1", "1e9", "", "x", "1-", "1e999"]


@pytest.mark.parametrize("fault", [f.value for f in DeviceFault])
@pytest.mark.parametrize(("form", "value", "allowed"), [
    ("{}@nan", "'nan'", "0 and <= 604800"),
    ("{}@inf", "'inf'", "0 and <= 604800"),
    ("{}@-1", "'-1'", "0 and <= 604800"),
    ("{}@1-nan", "'nan'", "0 and <= 604800"),
    ("{}@1e6", "'1e6'", "0 and <= 604800"),
    ("{}@5-2", "T2 2", "T2 > T1 = 5"),
    ("{}@3-3", "T2 3", "T2 > T1 = 3"),
    ("{}~nan", "'nan'", "> 0 and <= 10"),
    ("{}~-1", "'-1'", "> 0 and <= 10"),
    ("{}~0", "'0'", "> 0 and <= 10"),
    ("{}~1e9", "'1e9'", "> 0 and <= 10"),
    ("{}~inf", "'inf'", "> 0 and <= 10"),
])
def test_every_device_fault_refuses_times_and_rates_out_of_range(fault, form, value, allowed):
    item = form.format(fault)
    with pytest.raises(FaultSpecError) as exc:
        parse_fault_spec(f"drop=0.1,{item}")
    message = str(exc.value)
    assert f"bad fault spec item {item!r}" in message and value in message, message
    assert allowed in message and "convert string to float" not in message, message


@pytest.mark.parametrize("event", LINK_EVENTS)
def test_link_events_refuse_bad_times_too(event):
    for item in (f"{event}@nan", f"{event}@-1", f"{event}@2-1"):
        with pytest.raises(FaultSpecError, match=event):
            parse_fault_spec(item)


@pytest.mark.parametrize(("item", "allowed"), [
    ("delay=1e9", "seconds >= 0 and <= 604800"),
    ("delay_type=ESTOP:1e9", "seconds >= 0 and <= 604800"),
    ("junk=-0.1", "(a probability) >= 0 and <= 1"),
])
def test_link_numbers_are_bounded_too(item, allowed):
    with pytest.raises(FaultSpecError, match=allowed.replace("(", r"\(").replace(")", r"\)")):
        parse_fault_spec(item)


def test_the_limits_themselves_and_exponents_are_accepted():
    plan = parse_fault_spec(f"jam@0-{MAX_TIME_S:g},stall@1e-3-2.5,pedal_up~{MAX_RATE_PER_S:g},"
                            f"delay={MAX_TIME_S:g},drop=1")
    assert plan.schedule == [ScheduledFault(0.0, "jam", MAX_TIME_S),
                             ScheduledFault(0.001, "stall", 2.5)]
    assert plan.random == [RandomFault(DeviceFault.PEDAL_UP, MAX_RATE_PER_S)]
    assert plan.link.delay_s == MAX_TIME_S and plan.link.drop_p == 1.0


def test_the_dataclasses_refuse_what_the_spec_refuses():
    """`sim.schedule(ScheduledFault(...))` bypasses the spec: a NaN there killed the thread too."""
    for bad in ({"at_s": math.nan}, {"at_s": -1.0}, {"at_s": 2.0, "until_s": 1.0},
                {"at_s": 1.0, "until_s": math.inf}):
        with pytest.raises(FaultSpecError):
            ScheduledFault(action="jam", **bad)
    for rate in (math.nan, 0.0, -1.0, 1e9):
        with pytest.raises(FaultSpecError, match="rate_per_s"):
            RandomFault(DeviceFault.JAM, rate)


def _assert_bounded(plan: FaultPlan) -> None:
    for item in plan.schedule:
        assert 0 <= item.at_s <= MAX_TIME_S
        assert item.until_s is None or item.at_s < item.until_s <= MAX_TIME_S
        assert item.action in NAMES
    for rnd in plan.random:
        assert 0 < rnd.rate_per_s <= MAX_RATE_PER_S and 0 < rnd.hold_s <= MAX_TIME_S
    link = plan.link
    for p in (link.drop_p, link.flip_p, link.junk_p, link.dup_p, link.split_p):
        assert 0 <= p <= 1
    assert 0 <= link.delay_s <= MAX_TIME_S and 0 <= link.delay_in_s <= MAX_TIME_S
    assert plan.schedule == sorted(plan.schedule)


def _parses_or_refuses(spec: str) -> str:
    """'parsed' (with every value bounded) or 'refused' (one FaultSpecError); anything else
    raised fails the test."""
    try:
        plan = parse_fault_spec(spec)
    except FaultSpecError as exc:
        assert str(exc).startswith("bad fault spec item "), str(exc)
        return "refused"
    _assert_bounded(plan)
    return "parsed"


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_text_parses_bounded_or_is_refused_with_a_fault_spec_error(spec):
    assert _parses_or_refuses(spec) in ("parsed", "refused")


_number = st.one_of(
    st.sampled_from([*BAD, "0", "0.5", "1e-3", "-0", "+2", " 3 ", "604800", "10", "1_0"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_item = st.one_of(
    st.builds("{}@{}".format, st.sampled_from(NAMES), _number),
    st.builds("{}@{}-{}".format, st.sampled_from(NAMES), _number, _number),
    st.builds("{}~{}".format, st.sampled_from(NAMES), _number),
    st.builds("{}={}".format, st.sampled_from(["drop", "flip", "junk", "dup", "split", "delay"]),
              _number),
    st.builds("delay_type={}:{}".format, st.sampled_from(["ESTOP", "*", "PING+ESTOP"]), _number),
)


@given(st.lists(_item, max_size=5).map(",".join))
@settings(max_examples=400, deadline=None)
def test_spec_like_text_parses_bounded_or_is_refused_with_a_fault_spec_error(spec):
    assert _parses_or_refuses(spec) in ("parsed", "refused")


def test_a_bad_spec_in_a_pensim_port_is_one_line_not_a_lost_link(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["info", "--port", "pensim://?faults=pedal_up@nan"])
    assert result.exit_code == 2, result.output
    assert "bad fault spec item 'pedal_up@nan'" in result.output, result.output
    assert "link to the pen is down" not in result.output and "Traceback" not in result.output


def test_smp_sim_refuses_a_flooding_rate_before_it_starts(tmp_path):
    # a process, not CliRunner: a simulator that took the spec would run until Ctrl-C
    result = subprocess.run(
        [sys.executable, "-m", "smpdevice", "sim", "--tcp", "0", "--faults", "pedal_up~1e9"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "SMP_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    assert "rate R (faults per second) '1e9' is out of range" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_smp_sim_help_lists_every_fault_kind_and_the_limits():
    out = CliRunner().invoke(main, ["sim", "--help"], terminal_width=200).output
    for name in NAMES:
        assert name in out, f"`smp sim --help` does not name {name}"
    assert "pedal" in out and f"R <= {MAX_RATE_PER_S:g}" in out and f"{MAX_TIME_S:g}" in out
