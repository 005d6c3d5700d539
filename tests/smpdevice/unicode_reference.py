"""The one-line rule's reference, read from the running Python's Unicode tables (categories and
names), not from smpdevice.checks' own ranges. Decided at run time, so that the tests hold on
any Python >= 3.11, whatever Unicode version its `unicodedata` ships."""

from __future__ import annotations

import unicodedata

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
