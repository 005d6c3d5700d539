"""Checks for values crossing the public API: type, finiteness and range, before anything is
sent or stored. Each failure is one typed error naming the parameter, the value and the range.

Python's `bool` is an `int`, and pydantic or `float()` would take "0.5": both are refused here,
because a flag or a string where a number belongs is a mistake, not a number.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from numbers import Real

from smpdevice.errors import SmpError

# What a one-line text (a name, a reason) never holds, as ranges, so that service/schema.py
# publishes the very same rule as a pattern: one rule, one place.
# - control characters (Unicode category Cc: NUL, TAB, LF, CR, ESC, DEL, NEL...);
# - Unicode's whole Bidi_Control class: the marks U+061C, U+200E, U+200F, the embeddings and
#   overrides U+202A-U+202E and the isolates U+2066-U+2069: they reorder what a reader sees
#   ("Trojan Source");
# - the line and paragraph separators U+2028/U+2029 (categories Zl, Zp): str.splitlines(),
#   JavaScript and many viewers break a line there;
# - lone UTF-16 surrogates U+D800-U+DFFF (category Cs): legal in JSON text ("\ud800") and in a
#   Python str, but no UTF-8 record, log line or terminal can hold one (UnicodeEncodeError).
CONTROL_RANGES = ((0x0000, 0x001F), (0x007F, 0x009F))
BIDI_CONTROL_RANGES = ((0x061C, 0x061C), (0x200E, 0x200F), (0x202A, 0x202E), (0x2066, 0x2069))
LINE_SEPARATOR_RANGES = ((0x2028, 0x2029),)
SURROGATE_RANGES = ((0xD800, 0xDFFF),)
NOT_IN_LINE_RANGES = (CONTROL_RANGES + BIDI_CONTROL_RANGES + LINE_SEPARATOR_RANGES
                      + SURROGATE_RANGES)


def _chars(ranges: tuple[tuple[int, int], ...]) -> frozenset[str]:
    return frozenset(chr(c) for lo, hi in ranges for c in range(lo, hi + 1))


BIDI_CONTROLS = _chars(BIDI_CONTROL_RANGES)
LINE_SEPARATORS = _chars(LINE_SEPARATOR_RANGES)
_NOT_IN_LINE = _chars(NOT_IN_LINE_RANGES)
# The rule in words, beside its ranges so that both change together (the service's params).
NOT_IN_LINE_WORDS = ("no control character, bidirectional control, line or paragraph "
                     "separator or lone surrogate")


def not_in_line(char: str) -> bool:
    """Whether a one-line text may not hold `char` (NOT_IN_LINE_RANGES)."""
    return char in _NOT_IN_LINE


class InvalidArgument(SmpError):
    """An argument of a public call is of the wrong type, not finite, or out of range."""


def _fmt(x: float) -> str:
    return f"{x:g}"


def _refuse(error: type[SmpError], name: str, value: object, allowed: str, why: str) -> SmpError:
    try:
        shown = repr(value)
    except ValueError:  # an int too long to show (sys.set_int_max_str_digits)
        shown = f"<a {type(value).__name__} too large to show>"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return error(f"{name}={shown} is refused: {why}; allowed: {allowed}. "
                 f"Correct {name} to an allowed value.")


def is_finite_real(value: object) -> bool:
    """A real number (not a bool) that is finite."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    try:
        return math.isfinite(float(value))
    except (OverflowError, ValueError, TypeError):  # 10**400: no float holds it
        return False


def finite_number(
    name: str,
    value: object,
    lo: float,
    hi: float,
    *,
    unit: str = "",
    lo_open: bool = False,
    error: type[SmpError] = InvalidArgument,
) -> float:
    """`value` as a float if it is a real number (not a bool), finite and in [lo, hi]
    (or (lo, hi] with `lo_open`); else `error` saying so."""
    allowed = (f"{'more than' if lo_open else 'from'} {_fmt(lo)} "
               f"{'up to' if lo_open else 'to'} {_fmt(hi)}{' ' + unit if unit else ''}")
    if math.isinf(lo) and math.isinf(hi):
        allowed = f"any finite number{' of ' + unit if unit else ''}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _refuse(error, name, value, allowed, f"it is a {type(value).__name__}, not a number")
    try:
        x = float(value)
    except (OverflowError, ValueError, TypeError):  # 10**400, a Real whose float() fails
        raise _refuse(error, name, value, allowed, "it is not a finite number") from None
    if not math.isfinite(x):
        raise _refuse(error, name, value, allowed, "it is not a finite number")
    if x < lo or x > hi or (lo_open and x == lo):
        raise _refuse(error, name, value, allowed, "it is out of range")
    return x


def whole_number(
    name: str, value: object, lo: int, hi: int, *, unit: str = "",
    error: type[SmpError] = InvalidArgument,
) -> int:
    """`value` if it is an int (not a bool) in [lo, hi]; else `error` saying so."""
    allowed = f"a whole number from {lo} to {hi}{' ' + unit if unit else ''}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(error, name, value, allowed, f"it is a {type(value).__name__}, not an int")
    if not lo <= value <= hi:
        raise _refuse(error, name, value, allowed, "it is out of range")
    return value


def text(
    name: str, value: object, *, max_len: int = 200, error: type[SmpError] = InvalidArgument
) -> str:
    """`value` if it is a str of 1 to `max_len` characters that is one line (`line_problem`):
    a name must read in a record, a log line or a CSV cell as it was typed, never reorder or
    split them, and be writable as UTF-8."""
    allowed = (f"a non-empty text of at most {max_len} characters, with a visible one, "
               "without control, bidirectional-control, line-separator, lone surrogate or "
               "unassigned characters")
    if not isinstance(value, str):
        raise _refuse(error, name, value, allowed, f"it is a {type(value).__name__}, not a text")
    if not value or len(value) > max_len:
        raise _refuse(error, name, value, allowed, "it is empty or too long")
    problem = line_problem(value)
    if problem is not None:
        raise _refuse(error, name, value, allowed, problem)
    return value


def line_problem(value: str) -> str | None:
    """Why `value` is not a one-line text, or None: the one rule of names and reasons, which
    the station (`text`) and the service (jsonschema_lite, behind the schema's pattern) both
    give, so that a text is refused for the same reason in the same words on both sides.
    Checked in this order, each naming the first character it refuses:
    1. a character of NOT_IN_LINE_RANGES (it breaks or reorders the line, whatever else);
    2. a code point this Python's Unicode tables do not know (unassigned_ranges): it may be a
       newer mark or format control, and nobody can tell whether it shows;
    3. no `visible` character (only spaces, U+200B, lone marks...)."""
    bad = next((c for c in value if c in _NOT_IN_LINE), None)
    if bad is not None:
        return (f"it contains the character U+{ord(bad):04X} (a one-line text holds "
                f"{NOT_IN_LINE_WORDS})")
    unknown = next((c for c in value if unassigned(c)), None)
    if unknown is not None:
        return f"it contains U+{ord(unknown):04X}, {UNASSIGNED_WORDS}"
    if not any(map(visible, value)):
        return "it has no visible character (it must not be blank)"
    return None


# Characters that show nothing by themselves. A name must hold at least one character that
# does, whatever its plane, so that a record never holds a name nobody can read:
# - Unicode's Default_Ignorable_Code_Point, all of it: U+00AD soft hyphen, U+200B zero-width
#   space, U+2060 word joiner, U+FEFF, the Hangul fillers, variation selectors, and in the
#   astral planes the shorthand format controls U+1BCA0-U+1BCA3, the musical formatting
#   U+1D173-U+1D17A and the tag block U+E0000-U+E0FFF (tags, variation selectors, and the
#   unassigned code points reserved to be ignorable);
# - BLANK_CATEGORIES: controls (Cc), format characters (Cf; the few that draw a sign, such as
#   U+0600, only draw it over the digits that follow), lone surrogates (Cs), spaces and line or
#   paragraph separators (Zs, Zl, Zp), and marks that only decorate a base character
#   (non-spacing Mn, enclosing Me): "\u0301" alone is an accent over nothing;
# - U+2800 braille pattern blank (category So), drawn as an empty cell by design.
# Private-use (Co) characters count as visible: Unicode asks a renderer to draw them (a font's
# glyph, or a missing-glyph box). Code points this Python's tables do not know (Cn) are
# refused by `line_problem` before visibility is asked (unassigned_ranges): they may be marks
# or format controls of a newer Unicode than these tables (U+0ECE, U+11F00 and U+13439 are
# Cn in Unicode 14, marks since 15), which a current viewer draws as nothing, and a signed
# record must not hold a name nobody can read.
INVISIBLE_RANGES = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                    (0xE0000, 0xE0FFF))
BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp", "Mn", "Me"})
_INVISIBLE = _chars(INVISIBLE_RANGES) | {"\u2800"}


def visible(char: str) -> bool:
    """Whether `char` shows as something on its own (see INVISIBLE_RANGES and
    BLANK_CATEGORIES): not a space, a control, a format character, a lone mark or a
    default-ignorable code point, in any plane."""
    return not (char.isspace() or char in _INVISIBLE
                or unicodedata.category(char) in BLANK_CATEGORIES)


# Planes 0, 1 and 14 hold every character of BLANK_CATEGORIES: planes 2 and 3 are for CJK
# ideographs, 15 and 16 for private use, the rest is unassigned (tests check it over every
# code point). Scanning only these keeps the cost to ~40 ms, paid by service/schema.py only on a
# Python whose Unicode tables differ from those service/line_ranges.py was stored from.
_BLANK_PLANES = ((0x0000, 0x1FFFF), (0xE0000, 0xEFFFF))


@functools.cache
def blank_ranges() -> tuple[tuple[int, int], ...]:
    """Every code point `visible` refuses, as merged ranges (for service/schema.py's pattern)."""
    ranges: list[list[int]] = []
    for lo, hi in _BLANK_PLANES:
        for code in range(lo, hi + 1):
            if visible(chr(code)):
                continue
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return tuple((lo, hi) for lo, hi in ranges)


# Planes 4-13 are unassigned in every Unicode so far, and planes 15-16 are private use but for
# their last two code points (noncharacters): scanning the rest keeps the cost low (a test
# checks the ranges against unicodedata over every code point).
_UNASSIGNED_SCAN = ((0x0000, 0x3FFFF), (0xE0000, 0xEFFFF), (0xFFFFE, 0xFFFFF),
                    (0x10FFFE, 0x10FFFF))
_UNASSIGNED_PLANES = (0x40000, 0xDFFFF)


UNASSIGNED_WORDS = (f"a code point this Python's Unicode {unicodedata.unidata_version} "
                    "tables do not know (unassigned, or assigned only since)")


def unassigned(char: str) -> bool:
    """Whether `char` is unknown to this Python's Unicode tables (category Cn): `text` refuses
    it, since nobody can tell whether it shows."""
    return unicodedata.category(char) == "Cn"


@functools.cache
def unassigned_ranges() -> tuple[tuple[int, int], ...]:
    """Every code point `text` refuses as unknown to this Python's Unicode tables (category
    Cn, noncharacters included), as merged ranges (for service/schema.py's pattern)."""
    codes = (c for lo, hi in _UNASSIGNED_SCAN for c in range(lo, hi + 1)
             if unicodedata.category(chr(c)) == "Cn")
    ranges: list[list[int]] = [list(_UNASSIGNED_PLANES)]
    for code in codes:
        if ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    ranges.sort()
    merged = [ranges[0]]
    for lo, hi in ranges[1:]:  # the planes' block joins its neighbours
        if merged[-1][1] >= lo - 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


# pen.clear_faults's reason: enough to say why clearing is safe (the service, and
# `smp clear --service URL --reason TEXT` before it calls).
CLEAR_REASON_MIN_SEEN = 3


def visible_count(value: str) -> int:
    """How many characters of `value` a reader sees: its extended grapheme clusters (Unicode
    UAX #29: a letter with its marks, an emoji ZWJ sequence, a flag, a Hangul syllable written
    as jamo each count once) that hold a `visible` code point."""
    import regex  # \X: extended grapheme clusters; imported here, not by every `smp` process

    return sum(1 for g in regex.findall(r"\X", value) if any(map(visible, g)))


# As a calibration's technician (control/calibration.py): one person, one rule everywhere.
TECHNICIAN_MAX_CHARS = 200


def technician(value: object, *, name: str = "technician",
               error: type[SmpError] = InvalidArgument) -> str:
    """`value` if it is a usable technician's name (`text`): it goes into the signed pass log,
    its exports and the aftercare sheet exactly as given."""
    return text(name, value, max_len=TECHNICIAN_MAX_CHARS, error=error)


def instance(name: str, value: object, cls: type | tuple[type, ...], allowed: str,
             error: type[SmpError] = InvalidArgument) -> None:
    if not isinstance(value, cls):
        raise _refuse(error, name, value, allowed, f"it is a {type(value).__name__}")


def callback_or_none(name: str, value: object, allowed: str,
                     error: type[SmpError] = InvalidArgument) -> None:
    """Refuse a callback that can never be called (a number, a string) before it is needed:
    met mid-pass it would be a bare TypeError with the needle already started."""
    if value is not None and not callable(value):
        raise _refuse(error, name, value, f"{allowed}, or None", f"it is a "
                      f"{type(value).__name__}, which cannot be called; nothing was sent to "
                      "the pen")
