"""The one-line rule of names and reasons (checks.text, and the schema's LINE_PATTERN that
rpc.describe publishes): derived here from Unicode's own tables, not from the rule's list.
Lone surrogates (category Cs, "\\ud800" in JSON) are in it: no UTF-8 record holds one."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.schema import LINE_PATTERN, METHODS
from tests.smpdevice.unicode_reference import every_code_point, unicode_run_dir  # noqa: F401


def not_in_a_line() -> list[str]:
    """unicode_reference.not_in_a_line's code points, from Unicode's tables (category, bidi
    class, name): scanned once per test run, when a test first asks, not at collection."""
    return sorted(every_code_point("not_in_a_line"))


def test_the_rule_is_exactly_controls_bidi_controls_and_line_separators():
    table = not_in_a_line()
    assert "\u061c" in table and "\u2028" in table  # the table is read
    assert "\ud800" in table and "\udfff" in table  # lone surrogates (Cs)
    assert frozenset(table) == checks._chars(checks.NOT_IN_LINE_RANGES)


def test_every_such_character_is_refused_by_both_with_its_code():
    """Each character once, but of the 2,048 lone surrogates only their ends (the property
    below and test_a_lone_surrogate_... take the rest). One test over the 83 of them: as 83
    tests their start-up cost more than their checks."""
    each = [c for c in not_in_a_line() if not 0xD800 < ord(c) < 0xDFFF
            or ord(c) in (0xDBFF, 0xDC00)]
    assert len(each) > 70  # every control, bidi control and separator of the table
    passed = []
    for char in each:
        name = f"ana{char}eve"
        with pytest.raises(checks.InvalidArgument, match=f"U\\+{ord(char):04X}"):
            checks.text("technician", name)
        if re.fullmatch(LINE_PATTERN, name) is not None:
            passed.append(f"U+{ord(char):04X}")
    assert passed == []  # the published pattern refuses each of them too


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
       st.deferred(lambda: st.sampled_from(not_in_a_line())), st.integers(0, 12))
def test_no_name_holding_one_passes_either(text, char, at):
    name = text[:at] + char + text[at:]
    with pytest.raises(checks.InvalidArgument):
        checks.text("name", name)
    assert re.fullmatch(LINE_PATTERN, name) is None


@pytest.mark.parametrize("name", ["Ana Eve", "إيمان", "שרה", "名前", "Zoë", "a\u200db"])
def test_names_in_any_script_pass(name):
    assert checks.text("name", name) == name
    assert re.fullmatch(LINE_PATTERN, name)


@pytest.mark.parametrize("name", ["ana \ud800", "\udfff", "checked \udc80 twice"])
def test_a_lone_surrogate_is_refused_naming_it_and_every_refused_name_encodes(name):
    with pytest.raises(checks.InvalidArgument, match=r"U\+D[89A-F][0-9A-F]{2}"):
        checks.text("technician", name)
    assert re.fullmatch(LINE_PATTERN, name) is None


@given(st.lists(st.characters() | st.characters(categories=["Cs"]), min_size=1, max_size=12)
       .map("".join))  # (st.text leaves lone surrogates out, whatever its alphabet)
def test_whatever_passes_the_rule_can_be_written_as_utf8(name):
    try:
        checks.text("name", name)
    except checks.InvalidArgument:
        return
    name.encode("utf-8")  # a record, a log line, a terminal: never UnicodeEncodeError
    assert re.fullmatch(LINE_PATTERN, name)


_LINE = st.characters() | st.characters(categories=["Cs"]) | st.sampled_from(
    ["\u200b", "\x1b", " ", "\u0301", "\u0ece", "\ufffe", "\u202e", "\U000e0020", "a"])


@given(st.lists(_LINE, min_size=1, max_size=12).map("".join))
@example("\u200b\x1b")  # was "U+001B" at the station, "must not be blank" from the service
@example("\ufffe\x1b")  # was U+001B at the station, U+FFFE from the service
@example("   ")  # was "empty or too long" at the station
@example("\u0ece\u0ece\u0ece")
@example("Ana")
def test_the_station_and_the_service_refuse_a_text_for_the_same_reason(name):
    """One rule, checks.line_problem, in one order: checks.text (the station's names) and the
    service's params (jsonschema_lite behind the published pattern) refuse the same texts,
    saying the same reason, and let the same texts through."""
    try:
        checks.text("zone", name, max_len=64)
        station = None
    except checks.InvalidArgument as refused:
        station = str(refused).split("is refused: ", 1)[1].rsplit("; allowed: ", 1)[0]
    try:
        validate(METHODS["pen.set_zone"].params, {"zone": name})
        service = None
    except SchemaViolation as refused:
        service = refused.rule
    assert station == service  # the same reason, in the same words (or both accept)
    assert station == checks.line_problem(name)
    assert (re.fullmatch(LINE_PATTERN, name) is None) == (station is not None)
