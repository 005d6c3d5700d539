"""The one-line rule's reference, read from the running Python's Unicode tables (categories and
names), not from smpdevice.checks' own ranges. Decided at run time, so that the tests hold on
any Python >= 3.11, whatever Unicode version its `unicodedata` ships."""

from __future__ import annotations

import functools
import json
import sys
import unicodedata

import pytest

from tests.run_once import run_dir, run_lock

# Controls, format characters, surrogates, separators and marks that need a base character.
BLANK = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"}


def blank(c: str) -> bool:
    """Whether `c` shows nothing by itself. Unicode's Default_Ignorable_Code_Point outside
    BLANK is the Hangul fillers (Lo), U+2065 and U+FFF0-U+FFF8 (reserved) and the tag block
    U+E0000-U+E0FFF; U+2800 is the blank braille cell."""
    o, name = ord(c), unicodedata.name(c, "")
    return (unicodedata.category(c) in BLANK or c.isspace()
            or ("HANGUL" in name and name.endswith("FILLER")) or o in (0x2065, 0x2800)
            or 0xFFF0 <= o <= 0xFFF8 or 0xE0000 <= o <= 0xE0FFF)


def unknown_here(c: str) -> bool:
    """Whether this Python's tables do not know `c` (category Cn)."""
    return unicodedata.category(c) == "Cn"


# Marks and format controls of Unicode 15, each with its block: U+0ECE LAO YAMAKKAN, U+10EFD,
# U+11F00 KAWI SIGN CANDRABINDU, U+13439 EGYPTIAN HIEROGLYPH INSERT AT MIDDLE, U+1E4EC (a
# current viewer draws them as nothing). Unknown to Unicode 14 (Python 3.11), known since.
NEWER_MARKS = {"\u0ece": (0x0E80, 0x0EFF), "\U00010efd": (0x10EC0, 0x10EFF),
               "\U00011f00": (0x11F00, 0x11F5F), "\U00013439": (0x13430, 0x1345F),
               "\U0001e4ec": (0x1E4D0, 0x1E4FF)}


def unknown_in_blocks() -> list[str]:
    """Per NEWER_MARKS entry, a code point of its block this Python does not know: the mark
    itself under older tables, else the block's first still-unassigned code point (what a
    later Unicode may fill with a mark)."""
    found = []
    for mark, (lo, hi) in NEWER_MARKS.items():
        if unknown_here(mark):
            found.append(mark)
            continue
        spare = next((chr(c) for c in range(lo, hi + 1) if unknown_here(chr(c))), None)
        if spare is not None:
            found.append(spare)
    return found


def known_here() -> list[str]:
    """NEWER_MARKS this Python knows (none under Unicode 14), and U+0301, known to all."""
    return [m for m in NEWER_MARKS if not unknown_here(m)] + ["\u0301"]


# Unicode's Bidi_Control property: the explicit formatting characters (by their bidi class)
# and the three marks (their bidi class is L, R or AL, so they are named here).
EXPLICIT = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
MARKS = {"LEFT-TO-RIGHT MARK", "RIGHT-TO-LEFT MARK", "ARABIC LETTER MARK"}


def not_in_a_line(c: str) -> bool:
    """Whether `c` may not stand in a one-line text: a control, a bidi control, a line or
    paragraph separator, a lone surrogate (Cs)."""
    return (unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs")
            or unicodedata.bidirectional(c) in EXPLICIT or unicodedata.name(c, "") in MARKS)


TABLES = {"blank": blank, "not_in_a_line": not_in_a_line, "unknown_here": unknown_here}


def _ranges(codes: list[int]) -> list[list[int]]:
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return ranges


@functools.cache
def every_code_point(table: str) -> frozenset[str]:
    """The code points, of all 1.1 million, for which TABLES[table] holds."""
    return frozenset(chr(c) for lo, hi in code_point_ranges(table) for c in range(lo, hi + 1))


@functools.cache
def code_point_ranges(table: str) -> tuple[tuple[int, int], ...]:
    """every_code_point(table) as merged ranges of code points. The scan (about
    0.7 CPU-s for the three tables) is made once per test run, by the first test that asks, in
    whichever pytest-xdist worker (tests.run_once); the others read its ranges. Never at import:
    every worker imports the test modules to collect them."""
    root = run_dir(_factory())
    done = root / "unicode-reference.json"
    with run_lock(root, "unicode-reference"):
        if not done.is_file():
            found = {name: _ranges([c for c in range(sys.maxunicode + 1) if holds(chr(c))])
                     for name, holds in TABLES.items()}
            partial = done.with_suffix(".partial")
            partial.write_text(json.dumps(found))
            partial.rename(done)
        return tuple((lo, hi) for lo, hi in json.loads(done.read_text())[table])


_FACTORY: list[pytest.TempPathFactory] = []


def _factory() -> pytest.TempPathFactory:
    (factory,) = _FACTORY  # set by the `unicode_run_dir` fixture of the module asking
    return factory


@pytest.fixture(autouse=True, scope="module")
def unicode_run_dir(tmp_path_factory) -> None:
    """Import into a test module (autouse there): gives every_code_point the run's directory."""
    _FACTORY[:] = [tmp_path_factory]
