"""Telling an E-stop in any message within the size cap, whatever else the message holds.

A message names an E-stop when its top-level object, or an object directly inside a top-level
array (a batch), has a member "method" whose string value is "pen.estop" (escapes decoded; with
duplicate members, any of them). Nothing else counts: "pen.estop" as a param, deeper down or
inside a string is text.

The scan is lenient where the strict parser refuses (NaN, numbers of any size, nesting of any
depth, a leading byte order mark, duplicate members, broken syntax elsewhere) and bounded: the
message is at most the size cap (an over-cap message is refused unread before this) and is
walked once, with regular expressions doing the skipping in C: the Python loop steps only at
brackets that open a group nesting deeper than 8 (so at most one step per ~18 bytes), never per
member or per number. About 40 ms for the worst 256 KiB here, against ~70 ms for the strict
read of 256 KiB of integers. Only an E-stop is then read as JSON, for its id.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ESTOP = "pen.estop"


@dataclass(frozen=True)
class Found:
    """An E-stop in the message: in a lone object (its id echoed) or in a batch."""

    batch: bool
    ident: str | int | float | None = None
    has_id: bool = False


class _Obj(list):  # a JSON object as its (key, value) pairs: duplicates kept, told from arrays
    pass


# ints as Decimal: read in C at any length (int() refuses past 4,300 digits)
_scan_once: Any = json.JSONDecoder(strict=False, object_pairs_hook=_Obj,
                                   parse_int=Decimal).scan_once  # type: ignore[attr-defined]
_STR = r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)'  # an unterminated string runs to the end: linear
_WS = re.compile(r"[\s\ufeff]*")


def _spelled(word: str) -> str:
    """A JSON string that decodes to `word`: each character as itself or a \\u escape."""
    return '"' + "".join(f"(?:{re.escape(ch)}|\\\\u(?i:00{ord(ch):02x}))" for ch in word) + '"'


def _flat(levels: int, openers: str = r"[\[{]") -> str:
    """A bracketed group nesting at most `levels` deep (strings and scalars anywhere)."""
    inner = ""
    for _ in range(levels):
        inner = r"[\[{](?:[^\"\[\]{}]++|" + _STR + (("|" + inner) if inner else "") + r")*+[\]}]"
    return openers + inner[len(r"[\[{]"):]


# What the walk stops at: a member "method": "pen.estop" (however escaped), and bracket runs.
# Everything else is skipped in C; groups nesting up to 8 deep go in one match, so even a
# message of nothing but brackets costs one step per 18 bytes or more.
_ESTOP_MEMBER = _spelled("method") + r"\s*+:\s*+" + _spelled(ESTOP)
_FLAT = _flat(8)
_PLAIN = r'[^"\[\]{}]++|' + _STR
_SKIP_DEEP = re.compile(f"(?:{_PLAIN}|{_FLAT})*+", re.S)
_MEMBERS = r"(?:[^\"\[\]{}]++|(?!" + _ESTOP_MEMBER + ")" + _STR + "|" + _FLAT + ")*+"
_SKIP_MEMBERS = re.compile(_MEMBERS, re.S)
_ELEMENTS = f"(?:{_PLAIN}|{_flat(8, chr(92) + '[')}|\\{{{_MEMBERS}[\\]}}])*+"  # no E-stop
_SKIP_BATCH = re.compile(_ELEMENTS, re.S)
_SKIP_TOP = re.compile(f"(?:{_PLAIN}|\\[{_ELEMENTS}[\\]}}]|\\{{{_MEMBERS}[\\]}}])*+", re.S)
_IS_ESTOP = re.compile(_ESTOP_MEMBER, re.S)
_BRACKETS = re.compile(r"[\[{]++|[\]}]++")


def find_estop(raw: str | bytes) -> Found | None:
    """The E-stop the message names, or None. Never raises."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    start = _end(_WS, text, 0)
    found = _walk(text, start)
    if found is None or found.batch:
        return found
    try:  # an E-stop in a lone object: its id, to echo, when json can read the message
        value, _ = _scan_once(text, start)
    except (StopIteration, ValueError, RecursionError):
        return found  # answered with "id": null, as any message whose id cannot be read
    if isinstance(value, _Obj) and any(k == "method" and v == ESTOP for k, v in value):
        return _in_pairs(value)
    return found


def _in_pairs(pairs: _Obj) -> Found:
    ids = [val for key, val in pairs if key == "id"]
    return Found(batch=False, ident=_echoable(ids[-1]) if ids else None, has_id=bool(ids))


def _echoable(ident: Any) -> str | int | float | None:
    if isinstance(ident, Decimal):  # an integer of at most 19 digits, either sign (never a
        # huge int made); parse echoes it when it is within its range, as for any request
        return int(ident) if len(ident.as_tuple().digits) <= 19 else None
    if isinstance(ident, bool) or not isinstance(ident, str | int | float):
        return None
    if isinstance(ident, float) and not math.isfinite(ident):
        return None
    return ident


# ---------------------------------------------------------------- the walk, when JSON gives up


def _walk(text: str, pos: int) -> Found | None:
    """When JSON gives up: the same question answered leniently, bracket run by bracket run.
    Unbalanced brackets and stray tokens are taken as they come; the id is not read (the
    E-stop is answered with "id": null, as any message whose id cannot be read)."""
    depth = 0  # open containers, counted leniently
    top = elem = ""  # the kinds of the containers at depth 1 and 2
    while True:
        if (depth == 1 and top == "{") or (depth == 2 and top == "[" and elem == "{"):
            pos = _end(_SKIP_MEMBERS, text, pos)
            if _IS_ESTOP.match(text, pos):
                return Found(batch=depth == 2, ident=None, has_id=True)
        else:
            skip = _SKIP_TOP if depth == 0 else _SKIP_BATCH if depth == 1 and top == "[" \
                else _SKIP_DEEP
            pos = _end(skip, text, pos)
        run = _BRACKETS.match(text, pos)
        if run is None:  # the end, or a stray string in a counting object: step over it
            if pos >= len(text):
                return None
            pos += 1
            continue
        c, width = text[pos], run.end() - pos
        if c in "[{":
            if depth == 0:
                top, elem = c, (text[pos + 1] if width > 1 else "")
            elif depth == 1:
                elem = c
            depth += width
        else:
            depth = max(0, depth - width)
        pos = run.end()


def _end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a pattern that always matches (all its parts optional) ends, from pos."""
    match = pattern.match(text, pos)
    return match.end() if match else pos
