"""The one-line rule of names and reasons (checks.text, and the schema's LINE_PATTERN that
rpc.describe publishes): derived here from Unicode's own tables, not from the rule's list.
Lone surrogates (category Cs, "\\ud800" in JSON) are in it: no UTF-8 record holds one."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.schema import LINE_PATTERN, METHODS

# Unicode's Bidi_Control property: the explicit formatting characters (by their bidi class)
# and the three marks (their bidi class is L, R or AL, so they are named here).
EXPLICIT = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
MARKS = {"LEFT-TO-RIGHT MARK", "RIGHT-TO-LEFT MARK", "ARABIC LETTER MARK"}


def _not_in_a_line(c: str) -> bool:
    return (unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")
            or unicodedata.bidirectional(c) in EXPLICIT or unicodedata.name(c, "") in MARKS)


NOT_IN_A_LINE = [chr(c) for c in range(sys.maxunicode + 1) if _not_in_a_line(chr(c))]


def test_the_rule_is_exactly_controls_bidi_controls_and_line_separators():
    assert "\u061c" in NOT_IN_A_LINE and "\u2028" in NOT_IN_A_LINE  # the table is read
    assert "\ud800" in NOT_IN_A_LINE and "\udfff" in NOT_IN_A_LINE  # lone surrogates (Cs)
    assert frozenset(NOT_IN_A_LINE) == checks._chars(checks.NOT_IN_LINE_RANGES)


# each character once, but of the 2,048 lone surrogates only their ends (the property below
# and test_a_lone_surrogate_... take the rest)
EACH = [c for c in NOT_IN_A_LINE if not 0xD800 < ord(c) < 0xDFFF or ord(c) in (0xDBFF, 0xDC00)]


@pytest.mark.parametrize("char", EACH, ids=lambda c: f"U+{ord(c):04X}")
def test_every_such_character_is_refused_by_both_with_its_code(char):
    name = f"ana{char}eve"
    with pytest.raises(checks.InvalidArgument, match=f"U\\+{ord(char):04X}"):
        checks.text("technician", name)
    assert re.fullmatch(LINE_PATTERN, name) is None


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12),
       st.sampled_from(NOT_IN_A_LINE), st.integers(0, 12))
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
