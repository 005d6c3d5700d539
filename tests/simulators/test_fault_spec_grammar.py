"""The fault spec is the ASCII grammar docs/simulator.md describes, nothing more (review 5):
float() took `1_0`, full-width digits and `infinity`, str.lower()/upper() turned the Kelvin
sign into `k` and `ſ` into `S`, and `drop=0.1,drop=0.2` kept the last value silently. Any text
now either parses to a plan that `format_fault_spec` writes back exactly, or is refused with
a FaultSpecError naming the item."""

from __future__ import annotations

import dataclasses
import math

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.faults import (
    LINK_EVENTS,
    DeviceFault,
    FaultPlan,
    FaultSpecError,
    LinkFaultConfig,
    RandomFault,
    ScheduledFault,
    format_fault_spec,
    parse_fault_spec,
)
from smpdevice.cli import main

NAMES = [*(f.value for f in DeviceFault), *LINK_EVENTS]


@pytest.mark.parametrize(("spec", "item", "why"), [
    ("jam@1_0", "jam@1_0", "time T '1_0' is no decimal number"),
    ("jam@\uff11", "jam@\uff11", "U+FF11) is not ASCII"),  # full-width 1
    ("jam@\u0661-\u0662", "jam@\u0661-\u0662", "U+0661) is not ASCII"),  # Arabic-Indic 1-2
    ("jam@infinity", "jam@infinity", "time T 'infinity' is no decimal number"),
    ("jam@\x1c1", "jam@\x1c1", "time T '\\x1c1' is no decimal number"),
    ("pedal_up~1_0", "pedal_up~1_0", "rate R (faults per second) '1_0' is no decimal number"),
    ("drop=0x1", "drop=0x1", "drop '0x1' is no decimal number"),
    ("delay_type=ESTOP:1_0", "delay_type=ESTOP:1_0", "delay '1_0' is no decimal number"),
    ("jun\u212a=0.1", "jun\u212a=0.1", "U+212A) is not ASCII"),  # Kelvin sign: lower() -> k
    ("drop_type=e\u017ftop", "drop_type=e\u017ftop", "U+017F) is not ASCII"),  # upper() -> S
    ("drop=0.1,drop=0.2", "drop=0.2", "drop is given twice (first as 'drop=0.1')"),
    ("DROP=0.1, drop = 0.2", "drop = 0.2", "drop is given twice (first as 'DROP=0.1')"),
    ("delay=1;delay=2", "delay=2", "delay is given twice"),
    ("drop_type=ESTOP,drop_type=PING", "drop_type=PING", "drop_type is given twice"),
    ("delay_type=ESTOP:1,delay_type=PING:2", "delay_type=PING:2", "delay_type is given twice"),
    ("drop_type=ESTOP+estop", "drop_type=ESTOP+estop", "message type ESTOP is named twice"),
])
def test_only_the_documented_ascii_grammar_is_taken(spec, item, why):
    with pytest.raises(FaultSpecError) as exc:
        parse_fault_spec(spec)
    message = str(exc.value)
    assert message.startswith(f"bad fault spec item {item!r}: "), message
    assert why in message, message


def test_the_documented_number_forms_still_parse():
    plan = parse_fault_spec(" jam @ +1.5 - 2. , stall@.5-1E1 ,pedal_up~1e-3;drop=0,delay=-0")
    assert [(s.action, s.at_s, s.until_s) for s in plan.schedule] == [
        ("stall", 0.5, 10.0), ("jam", 1.5, 2.0)]
    assert plan.random == [RandomFault(DeviceFault.PEDAL_UP, 0.001)]
    assert plan.link.drop_p == 0.0 and plan.link.delay_s == 0.0


def test_a_pensim_port_refuses_a_duplicate_key_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["info", "--port", "pensim://?faults=drop=0.1,drop=0.2"])
    assert result.exit_code == 2, result.output
    assert "drop is given twice (first as 'drop=0.1')" in result.output, result.output
    assert "Traceback" not in result.output


def test_smp_sim_refuses_an_underscored_time_as_a_bad_parameter():
    # the spec is checked before anything starts, so CliRunner cannot hang here
    result = CliRunner().invoke(main, ["sim", "--tcp", "0", "--faults", "jam@1_0"])
    assert result.exit_code == 2, result.output
    assert "time T '1_0' is no decimal number" in result.output, result.output


def test_the_dataclasses_take_real_numbers_only():
    for bad in ("1_0", "\uff11", True, None, 10**400):
        with pytest.raises(FaultSpecError, match="at_s"):
            ScheduledFault(bad, "jam")
    assert ScheduledFault(" 2.5 ", "jam").at_s == 2.5
    with pytest.raises(FaultSpecError, match="a fault spec is text"):
        parse_fault_spec(b"jam@1")


def test_what_a_spec_cannot_say_is_refused_by_the_formatter():
    with pytest.raises(FaultSpecError, match="split_gap_s"):
        format_fault_spec(FaultPlan(link=LinkFaultConfig(split_gap_s=0.01)))
    with pytest.raises(FaultSpecError, match="hold_s"):
        format_fault_spec(FaultPlan(random=[RandomFault(DeviceFault.JAM, 1.0, hold_s=2.0)]))
    assert format_fault_spec(FaultPlan()) == "" and parse_fault_spec("") == FaultPlan()


def _fields(plan: FaultPlan) -> tuple[object, ...]:
    """Every field of a plan (ScheduledFault's == compares at_s only)."""
    return (dataclasses.astuple(plan.link),
            [(s.at_s, s.action, s.until_s) for s in plan.schedule],
            [(r.fault, r.rate_per_s, r.hold_s) for r in plan.random])


def _round_trips_or_names_the_item(spec: str) -> str:
    try:
        plan = parse_fault_spec(spec)
    except FaultSpecError as exc:
        items = [raw.strip(" \t\n\r\x0b\x0c") for raw in spec.replace(";", ",").split(",")]
        message = str(exc)
        named = [item for item in items if message.startswith(f"bad fault spec item {item!r}: ")]
        assert named, message
        return "refused"
    text = format_fault_spec(plan)
    again = parse_fault_spec(text)
    assert _fields(again) == _fields(plan), (spec, text)
    assert format_fault_spec(again) == text
    assert text.isascii() and all(math.isfinite(s.at_s) for s in again.schedule)
    return "parsed"


_number = st.one_of(
    st.sampled_from(["0", "0.5", "1e-3", "-0", "+2", " 3 ", ".5", "2.", "1E1", "1_0", "\uff11",
                     "\u0661", "nan", "inf", "infinity", "0x1", "1e999", "", "\x1c1", "1-2"]),
    st.floats(min_value=0, max_value=1).map(repr),
    st.floats(min_value=0, max_value=700000).map(repr),
)
_name = st.one_of(st.sampled_from(NAMES), st.sampled_from(["JAM", "pedal-up", "ja\u212am", "x"]))
_key = st.sampled_from(["drop", "flip", "junk", "dup", "split", "delay", "DROP", "jun\u212a"])
_types = st.sampled_from(["ESTOP", "*", "PING+ESTOP", "estop+ESTOP", "e\u017ftop", ""])
_item = st.one_of(
    st.builds("{}@{}".format, _name, _number),
    st.builds("{}@{}-{}".format, _name, _number, _number),
    st.builds("{}~{}".format, _name, _number),
    st.builds("{}={}".format, _key, _number),
    st.builds("drop_type={}".format, _types),
    st.builds("delay_type={}:{}".format, _types, _number),
    st.text(max_size=8),
)


@given(st.one_of(st.text(max_size=40), st.lists(_item, max_size=6).map(",".join)))
@settings(max_examples=600, deadline=None)
def test_any_text_round_trips_or_is_refused_naming_the_item(spec):
    assert _round_trips_or_names_the_item(spec) in ("parsed", "refused")
