"""Both lines of a key defined twice in a TOML file (`smpdevice.loader`).

`tomllib` refuses a duplicate key itself, but names one place only: where the second value
ends. The loader's promise is both lines, as for YAML and JSON, so this module finds the
statements of the file (a key = value, a [table] or an [[array]] header; never inside a string,
an array or an inline table) and the earlier statement that defines the same key.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass

from smpdevice.issues import escaped

# tomllib's messages for a key defined twice, and where it says it found the second one.
_TWICE = re.compile(r"^(Cannot overwrite a value|Cannot declare \(.*\) twice) "
                    r"\(at line (\d+), column \d+\)$")
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_INLINE_TWICE = re.compile(r"^Duplicate inline table key '(.*)' \(at line (\d+), column \d+\)$")


@dataclass(frozen=True)
class _Statement:
    line: int
    kind: str  # "value", "table" or "array"
    path: tuple[str, ...]  # the key's full path (its table's path and its own dotted key)
    table: int = 0  # for a value: how many names of `path` are its [table]'s


def duplicate(text: str, message: str) -> tuple[str, int | None, int] | None:
    """(dotted key, first line or None, second line) when tomllib's `message` says a key is
    defined twice, else None. The first line is None when it cannot be told for sure."""
    inline = _INLINE_TWICE.match(message)
    if inline:  # both in one inline table, on one line
        return inline.group(1), None, int(inline.group(2))
    twice = _TWICE.match(message)
    if not twice:
        return None
    statements = _statements(text.replace("\r\n", "\n"))
    before = [s for s in statements if s.line <= int(twice.group(2))]
    if not before:
        return None
    second = before[-1]  # tomllib points at the end of the second value: its statement
    seen: list[_Statement] = []
    for statement in before[:-1]:
        if statement.kind == "array":  # a new element: what was defined under it is gone
            seen = [s for s in seen if s.path[:len(statement.path)] != statement.path
                    or s.path == statement.path]
        seen.append(statement)
    first = next((s for s in seen if _clash(s, second)), None)
    if first is None:
        return _dotted(second.path), None, second.line
    # `a = 1`, `a.b = 2`: it is `a` twice; `[a]`, `b.c = 1`, `[a.b]`: `a.b`.
    key = second.path if second.kind != "value" else min(first.path, second.path, key=len)
    return _dotted(key), first.line, second.line


def _dotted(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: bare names joined by dots, others quoted (terminal
    controls and bidi marks escaped: the path is printed)."""
    return escaped(".".join(name if _BARE.fullmatch(name) else json.dumps(name, ensure_ascii=False)
                            for name in path))


def _clash(earlier: _Statement, later: _Statement) -> bool:
    if earlier.path == later.path:
        return not (earlier.kind == later.kind == "array")
    shorter, longer = sorted((earlier, later), key=lambda s: len(s.path))
    # `a = 1` then `a.b = 2`: a value cannot become a table.
    if shorter.kind == "value" and longer.path[:len(shorter.path)] == shorter.path:
        return True
    # `[a]`, `b.c = 1`, then `[a.b]` or `[a.b.d]`: a table made by a dotted key is closed.
    below = earlier.table + 1
    return (earlier.kind == "value" and later.kind != "value" and len(earlier.path) > below
            and len(later.path) >= below and later.path[:below] == earlier.path[:below])


def _statements(text: str) -> list[_Statement]:
    """Every statement of the file with its key's full path, in order."""
    out: list[_Statement] = []
    table: tuple[str, ...] = ()
    for line, start, end in _statement_spans(text):
        head = text[start:end]
        if head.startswith("["):
            array = head.startswith("[[")
            inner = _until(head, "]]" if array else "]", 2 if array else 1)
            path = _key_path(inner)
            if path is None:
                continue
            table = path
            out.append(_Statement(line, "array" if array else "table", path))
        else:
            key = _until(head, "=", 0)
            path = _key_path(key)
            if path is not None:
                out.append(_Statement(line, "value", table + path, len(table)))
    return out


def _until(head: str, stop: str, skip: int) -> str:
    """`head` from `skip` up to the first `stop` outside quotes (or to its end)."""
    i, quote = skip, ""
    while i < len(head):
        c = head[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif head.startswith(stop, i):
            return head[skip:i]
        i += 1
    return head[skip:]


def _key_path(key: str) -> tuple[str, ...] | None:
    """The path of a TOML key as written (`a."b.c"` is ('a', 'b.c')), read by tomllib."""
    try:
        node = tomllib.loads(f"{key.strip()} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(node, dict) and len(node) == 1:
        name, node = next(iter(node.items()))
        path.append(name)
    return tuple(path) if path else None


def _statement_spans(text: str) -> list[tuple[int, int, int]]:
    """(line, start, end of that line) of each line that begins a statement: the first
    character outside strings, arrays, inline tables and comments."""
    spans: list[tuple[int, int, int]] = []
    i, line, depth, line_start = 0, 1, 0, True
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line, line_start, i = line + 1, True, i + 1
            continue
        if c in " \t":
            i += 1
            continue
        if line_start and depth == 0 and c != "#":
            end = text.find("\n", i)
            spans.append((line, i, n if end < 0 else end))
        line_start = False
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in "\"'":
            end = _string_end(text, i)
            line += text.count("\n", i, end)
            i = end
        elif c in "[{":
            depth += 1 if depth or _opens_value(text, i) else 0
            i += 1
        elif c in "]}":
            depth = max(depth - 1, 0)
            i += 1
        else:
            i += 1
    return spans


def _opens_value(text: str, i: int) -> bool:
    """Whether the `[` or `{` at `i` (outside any value) opens a value: after `=` on its line,
    not a [table] header at the start of one."""
    line_start = text.rfind("\n", 0, i) + 1
    return "=" in text[line_start:i]


def _string_end(text: str, i: int) -> int:
    """The index just past the string that starts at `i` (basic, literal, or multi-line)."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        j = i + 3
        while True:
            k = text.find(quote * 3, j)
            if k < 0:
                return len(text)
            if quote == '"' and _escaped(text, k):
                j = k + 1
                continue
            k += 3
            while k < len(text) and text[k] == quote:  # up to two quotes may end the content
                k += 1
            return k
    j = i + 1
    while j < len(text) and text[j] != "\n":
        if quote == '"' and text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        j += 1
    return j


def _escaped(text: str, k: int) -> bool:
    backslashes = 0
    while k - backslashes - 1 >= 0 and text[k - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1
