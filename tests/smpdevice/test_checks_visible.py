"""A name must hold a character that shows, whatever its plane (checks.visible, checks.text and
the schema's LINE_PATTERN): names made only of astral invisibles (tag characters, musical
formatting, shorthand format controls) or of lone marks are refused like U+200B alone.

The reference (tests/smpdevice/unicode_reference.py) is read from the running Python's Unicode
tables (categories and names), not from the rule's own ranges."""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice import checks
from smpdevice.config import check_value
from smpdevice.service.jsonschema_lite import SchemaViolation, validate
from smpdevice.service.schema import LINE_PATTERN, METHODS
from tests.smpdevice import unicode_reference as ref
from tests.smpdevice.unicode_reference import (  # noqa: F401  (a fixture, autouse here)
    NEWER_MARKS,
    known_here,
    unicode_run_dir,
    unknown_here,
)


def all_blank() -> frozenset[str]:
    """ref.blank's code points: the scan of all 1.1 million is made once per test run, by the
    first test (in whichever pytest-xdist worker) that asks (unicode_reference)."""
    return ref.every_code_point("blank")


@functools.cache
def blank_in_a_line() -> list[str]:
    return sorted(c for c in all_blank() if not checks.not_in_line(c))


# The names the rule let through before: astral invisibles and lone marks, each alone.
ASTRAL_INVISIBLE = [
    "\U000e0020", "\U000e0041\U000e0042\U000e007f",  # tag characters (a "flag" tag sequence)
    "\U0001d173\U0001d17a", "\U0001d175",  # musical formatting (begin beam, end phrase)
    "\U0001bca0", "\U0001bca3",  # shorthand format controls
    "\U000e0001", "\U000e0100\U000e01ef",  # language tag, variation selectors supplement
    "\u0301", "\u0301\u0308\u0323", "\u20dd", " \u0301 ",  # lone marks (Mn, Me)
    "\u2800\u2800", "\U000e0020 \u200b",  # braille blank; a mix of every plane
]
# ... and names with a character that shows, from every plane, which still pass.
VISIBLE = ["Ana", "x\u0301", "\U0001d11e", "\U0001F600", "\U00020000", "\ue000",
           "\U000f0000", "\U0001e900", "\U000e0020A", "\u0e01\u0e34"]
# Code points this Python's tables do not know (Cn), chosen at run time from its own tables:
# per block of Unicode 15's marks (U+0ECE, U+11F00, U+13439...), the mark itself under older
# tables, else a code point of the block still unassigned; and reserved default-ignorables,
# noncharacters, planes 4-13, a gap of the Greek block (each kept only while unknown here).
# Refused in any name, also beside a visible character.
UNKNOWN = ref.unknown_in_blocks() + [c for c in ("\U000e0080", "\U000e0fff", "\ufffe",
                                             "\U0010ffff", "\U00050000", "\u0378")
                                 if unknown_here(c)]


def test_visible_is_the_reference_over_every_code_point():
    blank = all_blank()  # ref.blank of every code point
    assert "\U000e0020" in blank and "\U0001d173" in blank  # the tables are read
    wrong = [f"U+{ord(c):04X}" for c in map(chr, range(sys.maxunicode + 1))
             if checks.visible(c) == (c in blank)]
    assert wrong == []


def test_the_schemas_ranges_are_every_blank_code_point():
    """blank_ranges scans only the planes that hold such characters; this scans them all."""
    got = {c for lo, hi in checks.blank_ranges() for c in range(lo, hi + 1)}
    assert got == {ord(c) for c in all_blank()}


@pytest.mark.parametrize("name", ASTRAL_INVISIBLE,
                         ids=lambda n: "+".join(f"U{ord(c):04X}" for c in n))
def test_a_name_of_invisible_characters_is_refused_everywhere_a_name_is_checked(name):
    with pytest.raises(checks.InvalidArgument, match="no visible character"):
        checks.text("zone", name, max_len=64)
    with pytest.raises(checks.InvalidArgument, match="no visible character"):
        checks.technician(name)
    assert "no visible character" in check_value("technician", name)  # the station config
    assert re.fullmatch(LINE_PATTERN, name) is None  # what rpc.describe publishes
    for method, param in (("rpc.hello", "client"), ("session.run", "technician"),
                          ("pen.set_zone", "zone"), ("pen.clear_faults", "reason")):
        with pytest.raises(SchemaViolation, match="no visible character"):
            validate(METHODS[method].params["properties"][param], name * 3, param)


@pytest.mark.parametrize("name", VISIBLE, ids=lambda n: "+".join(f"U{ord(c):04X}" for c in n))
def test_a_name_with_a_visible_character_passes_in_any_plane(name):
    assert checks.text("name", name) == name
    assert re.fullmatch(LINE_PATTERN, name)


_ANY = (st.characters(categories=["Cs"]) | st.characters()
        | st.deferred(lambda: st.sampled_from(blank_in_a_line())))


@given(st.lists(_ANY, min_size=1, max_size=8).map("".join))
@settings(max_examples=400, deadline=None)
def test_any_code_points_pass_exactly_when_one_shows_and_none_breaks_the_line(name):
    """Any code point of any plane (unassigned, private use, lone surrogates included), often
    the blank ones: checks.text and the published pattern agree with the reference."""
    expected = (any(not ref.blank(c) for c in name)
                and not any(checks.not_in_line(c) or unicodedata.category(c) == "Cn"
                            for c in name))
    try:
        checks.text("name", name)
        accepted = True
    except checks.InvalidArgument:
        accepted = False
    assert accepted == expected
    assert bool(re.fullmatch(LINE_PATTERN, name)) == expected


@pytest.mark.parametrize("char", UNKNOWN, ids=lambda c: f"U{ord(c):04X}")
def test_a_code_point_these_tables_do_not_know_is_refused_everywhere_saying_so(char):
    """Before, Cn counted as visible: a name or clear reason of Unicode 15 marks passed under
    Unicode 14."""
    assert unknown_here(char)
    for name in (char * 3, f"Ana {char}"):
        with pytest.raises(checks.InvalidArgument, match=f"contains U\\+{ord(char):04X}, a code "
                                                         "point this Python's Unicode"):
            checks.technician(name)
        assert re.fullmatch(LINE_PATTERN, name) is None
        assert re.search(LINE_PATTERN, name) is None
        with pytest.raises(SchemaViolation, match=f"U\\+{ord(char):04X}, a code point"):
            validate(METHODS["pen.clear_faults"].params["properties"]["reason"], name, "reason")


def test_the_unknown_code_points_are_found_whatever_the_unicode_version():
    """Each of Unicode 15's marks while these tables do not know it (all five under 3.11's
    Unicode 14), else a spare code point of its block; and noncharacters, never assigned."""
    assert "\ufffe" in UNKNOWN and "\U0010ffff" in UNKNOWN
    assert ref.unknown_in_blocks(), unicodedata.unidata_version
    for mark in NEWER_MARKS:
        assert (mark in UNKNOWN) == unknown_here(mark)


@pytest.mark.parametrize("mark", known_here(), ids=lambda c: f"U{ord(c):04X}")
def test_a_mark_these_tables_know_is_not_unknown(mark):
    """A mark assigned on this Python (Unicode 15's under 3.12+; U+0301 everywhere) is a mark:
    fine on a letter, blank alone, never refused as unknown."""
    assert checks.text("name", f"Ana{mark}") == f"Ana{mark}"
    assert re.fullmatch(LINE_PATTERN, f"Ana{mark}")
    with pytest.raises(checks.InvalidArgument, match="no visible character") as refused:
        checks.technician(mark * 3)
    assert "a code point this Python" not in str(refused.value)


def test_the_unassigned_ranges_are_every_code_point_these_tables_do_not_know():
    """The reference: unknown_here over every code point (unicode_reference, once a run)."""
    got = {c for lo, hi in checks.unassigned_ranges() for c in range(lo, hi + 1)}
    assert got == {c for lo, hi in ref.code_point_ranges("unknown_here")
                   for c in range(lo, hi + 1)}


@pytest.mark.parametrize("name", ["Ana\n", "cartridge ok\n", "Ana\n\n", "\nAna", "Ana\r\n"])
def test_the_pattern_searched_as_json_schema_does_refuses_a_newline_anywhere(name):
    """python-jsonschema searches (re.search): `$` matched before a final "\\n"."""
    with pytest.raises(checks.InvalidArgument):
        checks.text("name", name)
    assert re.search(LINE_PATTERN, name) is None


@given(st.lists(_ANY, min_size=1, max_size=8).map("".join) | st.text(max_size=8))
@settings(max_examples=300, deadline=None)
def test_the_pattern_searched_or_matched_agrees_with_checks_text(name):
    try:
        checks.text("name", name)
        accepted = True
    except checks.InvalidArgument:
        accepted = False
    assert bool(re.search(LINE_PATTERN, name)) == accepted == bool(re.fullmatch(LINE_PATTERN,
                                                                                name))


def test_the_published_pattern_says_it_is_for_unicode_mode():
    line = METHODS["pen.clear_faults"].params["properties"]["reason"]
    assert line["pattern"] == LINE_PATTERN and "`u`" in line["$comment"]


@pytest.mark.parametrize(("reason", "seen"), [
    ("ok!", 3), ("\u200b\u200b\u200b", 0), ("x\u0301y\u0308z", 3),
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467", 1),  # one family emoji (ZWJ sequence)
    ("\u1100\u1161\u11a8", 1),  # the Hangul syllable GAG as three conjoining jamo
    ("\U0001f1e9\U0001f1ea\u2757", 2),  # a flag (two regional indicators) and "!"
    ("\U0001f44d\U0001f3fd ok", 3),  # thumbs up with a skin tone, then "ok"
    ("a b", 2), ("\u2800\u2800\u2800", 0),
])
def test_visible_count_counts_what_a_reader_sees(reason, seen):
    """pen.clear_faults's "at least 3 visible characters" counted code points before."""
    assert checks.visible_count(reason) == seen
