"""The one-line rule of names and reasons (checks.text, and the schema's LINE_PATTERN that
rpc.describe publishes): derived here from Unicode's own tables, not from the rule's list."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.service.schema import LINE_PATTERN

# Unicode's Bidi_Control property: the explicit formatting characters (by their bidi class)
# and the three marks (their bidi class is L, R or AL, so they are named here).
EXPLICIT = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
MARKS = {"LEFT-TO-RIGHT MARK", "RIGHT-TO-LEFT MARK", "ARABIC LETTER MARK"}


def _not_in_a_line(c: str) -> bool:
    return (unicodedata.category(c) in ("Cc", "Zl", "Zp")
            or unicodedata.bidirectional(c) in EXPLICIT or unicodedata.name(c, "") in MARKS)


NOT_IN_A_LINE = [chr(c) for c in range(sys.maxunicode + 1) if _not_in_a_line(chr(c))]


def test_the_rule_is_exactly_controls_bidi_controls_and_line_separators():
    assert "\u061c" in NOT_IN_A_LINE and "\u2028" in NOT_IN_A_LINE  # the table is read
    assert frozenset(NOT_IN_A_LINE) == checks._chars(checks.NOT_IN_LINE_RANGES)


@pytest.mark.parametrize("char", NOT_IN_A_LINE, ids=lambda c: f"U+{ord(c):04X}")
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
