"""The one strict loader for every file smpdevice reads (profiles, screening, envelope, config).

A file a person writes is an input from outside, so it is read like one:
- **size cap** (`max_bytes`, default 1 MiB): checked before parsing; at most cap+1 bytes are read;
- **value cap** (`max_nodes`, default 5,000 scalars and collections) and **nesting cap**
  (`max_depth`, default 32): counted while parsing, so a bomb is refused early;
- **duplicate keys** refused, naming both lines (JSON, YAML, TOML: `loader_toml`);
- **YAML**: one document, no anchors, aliases, tags or directives, and YAML 1.2 core schema
  scalars: `1e9` is a float, `0o17` an octal integer, `yes`/`on`/`no`/`off` are text (only
  `true`/`false` are booleans), `.inf`/`.nan` are refused;
- **numbers** finite (`NaN`, `Infinity`, `.inf`, `1e999` refused) and integers below 2**53,
  so every number survives a round trip through a float exactly;
- mapping keys are text; the file is UTF-8 (a BOM is allowed); the top level is a mapping.

Every refusal is one `LoadError` naming the file, the line when known, what is wrong and what to
do. With PyYAML's libyaml binding (the default wheels have it) any file up to the caps is refused
or accepted in well under 100 ms: `python bench/loader.py` prints the figures.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smpdevice.errors import SmpError

DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_MAX_NODES = 5_000
DEFAULT_MAX_DEPTH = 32
# tomllib is pure Python (~140 ms per MiB of string): TOML (station config) gets a smaller cap.
TOML_MAX_BYTES = 128 * 1024
MAX_SAFE_INT = 2**53  # above this, an integer no longer survives a float exactly


@dataclass(frozen=True)
class Limits:
    """Caps for one load. The defaults suit every file the project reads."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_nodes: int = DEFAULT_MAX_NODES
    max_depth: int = DEFAULT_MAX_DEPTH


DEFAULT_LIMITS = Limits()


class LoadError(SmpError):
    """A file could not be read or was refused by the strict loader. Nothing in it was used."""

    def __init__(self, source: str, problem: str, hint: str, line: int | None = None):
        self.source = source
        self.line = line
        self.problem = problem
        self.hint = hint
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}; {hint}")


# --- entry points -------------------------------------------------------------------------------


def load_file(path: str | Path, *, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Read and parse one file: `.json` as JSON, `.toml` as TOML, anything else as YAML.

    Returns the top-level mapping as plain dicts, lists, str, int, float, bool and None."""
    if not isinstance(os.fspath(path), str):  # a path-like giving bytes: refused by name
        from smpdevice.checks import InvalidArgument

        raise InvalidArgument(f"the path {os.fspath(path)!r} is bytes: give a file path as str")
    kind = kind_of(path)
    cap = min(limits.max_bytes, TOML_MAX_BYTES) if kind == "toml" else limits.max_bytes
    raw = read_capped(path, cap)
    return load_bytes(raw, source=str(path), kind=kind, limits=limits)


def kind_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    return {".json": "json", ".toml": "toml"}.get(suffix, "yaml")


def load_bytes(raw: bytes | str, *, source: str = "<text>", kind: str = "yaml",
               limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Parse a document already in memory with the same rules as `load_file`."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    cap = min(limits.max_bytes, TOML_MAX_BYTES) if kind == "toml" else limits.max_bytes
    if len(raw) > cap:
        raise _too_big(source, len(raw), cap)
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    text = _decode(raw, source)
    if not text.strip():
        raise LoadError(source, "the file is empty", "it must hold a mapping of names to values")
    if kind == "json":
        data = _load_json(text, source, limits)
    elif kind == "toml":
        data = _load_toml(text, source, limits)
    elif kind == "yaml":
        from smpdevice.loader_yaml import load_yaml

        data = load_yaml(raw, source, limits)
    else:
        raise ValueError(f"unknown kind {kind!r}")  # a programming error, not the user's
    if not isinstance(data, dict):
        raise LoadError(source, f"the top level is {_kind_name(data)}",
                        "it must be a mapping of names to values")
    return data


def read_capped(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a regular file, refusing anything larger than `max_bytes` unread."""
    source = str(path)
    if "\0" in source:  # os.open would raise a bare ValueError ("embedded null byte")
        raise LoadError(source.replace("\0", "\\0"), "the path holds a NUL character (\\0)",
                        "no file name can hold one: give the file's path without it")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO must not hang
    except FileNotFoundError:
        raise LoadError(source, "no such file", "check the path") from None
    except IsADirectoryError:
        raise LoadError(source, "is a directory", "give the path of a file") from None
    except OSError as exc:
        raise LoadError(source, f"cannot be opened ({exc.strerror})",
                        "check the path and its permissions") from None
    try:
        info = os.fstat(fd)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            raise LoadError(source, "is a directory", "give the path of a file")
        if not stat.S_ISREG(mode):
            raise LoadError(source, "is not a regular file (a device, pipe or socket)",
                            "give the path of a file")
        if info.st_size > max_bytes:  # refused unread
            raise _too_big(source, info.st_size, max_bytes)
        chunks: list[bytes] = []
        left = max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise LoadError(source, f"cannot be read ({exc.strerror})",
                        "check the file and its permissions") from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    if len(raw) > max_bytes:  # it grew after fstat
        raise _too_big(source, None, max_bytes)
    return raw


# --- shared checks ------------------------------------------------------------------------------


def _too_big(source: str, size: int | None, cap: int) -> LoadError:
    what = f"is {size:,} bytes" if size and size > cap else "grew"
    return LoadError(source, f"the file {what}, above the cap of {cap:,} bytes ({cap // 1024} KiB)",
                     "this is not a profile, envelope, answers or config file; check the path")


def _decode(raw: bytes, source: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise LoadError(source, f"is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                        "save it as UTF-8 text; binary files are not read", line) from None


def _kind_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _number_problem(value: Any, written: str | None = None) -> str | None:
    """Why a parsed number is refused, or None. `written` is its spelling in the file."""
    shown = written if written is not None else str(value)
    if len(shown) > 30:
        shown = shown[:27] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return f"the number {shown} is not finite (too large for a float, or infinite)"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_SAFE_INT:
        return f"the integer {shown} is too large (it must be below 2**53 = {MAX_SAFE_INT})"
    return None


def _walk(data: Any, source: str, limits: Limits, locate: Any = None) -> None:
    """Depth, value count and number checks over parsed JSON/TOML data (iterative)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            raise _too_many(source, limits.max_nodes)
        if depth > limits.max_depth:
            raise _too_deep(source, limits.max_depth)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):  # TOML/JSON keys are text; kept for safety
                    raise LoadError(source, f"the key {key!r} is not text", "quote it")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        else:
            problem = _number_problem(value)
            if problem:
                line, written = locate() if locate else (None, None)
                if written is not None:
                    problem = _number_problem(value, written) or problem
                raise LoadError(source, problem, "use a finite number in the allowed range", line)


def _too_many(source: str, cap: int, line: int | None = None) -> LoadError:
    return LoadError(source, f"the file holds more than {cap:,} values (the cap)",
                     "split it, or check that this is the file you meant", line)


def _too_deep(source: str, cap: int, line: int | None = None) -> LoadError:
    return LoadError(source, f"the file is nested more than {cap} levels deep (the cap)",
                     "flatten it; no file of this project nests that deep", line)


def _duplicate(source: str, key: str, first: int | None, second: int | None) -> LoadError:
    shown = key if len(key) <= 60 else key[:57] + "..."
    lines = (f" on lines {first} and {second}" if first and second
             else f" (the second on line {second})" if second else "")
    return LoadError(source, f"the key {shown!r} appears twice in one mapping{lines}",
                     "keep exactly one; the loader never lets the last one silently win", second)


# --- JSON ---------------------------------------------------------------------------------------


class _Dup(Exception):
    def __init__(self, key: str):
        self.key = key


class _Constant(Exception):
    def __init__(self, literal: str):
        self.literal = literal


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Dup(key)
            seen.add(key)
    return out


def _constant(literal: str) -> Any:
    raise _Constant(literal)


def _load_json(text: str, source: str, limits: Limits) -> Any:
    # Cheap upper bound on the value count (C speed), so parsing time is bounded by the cap.
    bound = text.count(",") + text.count("[") + text.count("{") + 1
    if bound > 2 * limits.max_nodes:
        raise _too_many(source, limits.max_nodes)
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except _Dup as dup:
        first, second = _json_duplicate_lines(text, dup.key)
        raise _duplicate(source, dup.key, first, second) from None
    except _Constant as c:
        line = _json_line_of_word(text, c.literal)
        raise LoadError(source, f"the number {c.literal} is not finite",
                        "use a finite number in the allowed range", line) from None
    except json.JSONDecodeError as exc:
        raise LoadError(source, f"is not valid JSON: {exc.msg} (column {exc.colno})",
                        "fix the syntax", exc.lineno) from None
    except RecursionError:
        raise _too_deep(source, limits.max_depth) from None
    except ValueError:  # an integer of thousands of digits
        raise LoadError(source, "holds a number too long to read (thousands of digits)",
                        "use a finite number in the allowed range") from None
    _walk(data, source, limits, locate=lambda: _json_number_at(text))
    return data


# A JSON token scanner used only to put line numbers on refusals (linear; no backtracking blowup:
# each alternative starts with a distinct character class).
_JSON_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|-?[0-9][0-9.eE+-]*|-?[A-Za-z]+|\s+|.', re.DOTALL)


def _json_tokens(text: str) -> Iterator[tuple[str, int]]:
    for m in _JSON_TOKEN.finditer(text):
        tok = m.group()
        if not tok.isspace():
            yield tok, m.start()


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _json_duplicate_lines(text: str, key: str) -> tuple[int | None, int | None]:
    stack: list[dict[str, int]] = []  # key -> position, for each open object
    expect_key = False
    for tok, pos in _json_tokens(text):
        if tok == "{":
            stack.append({})
            expect_key = True
        elif tok == "[":
            stack.append({"\0list": 0})  # a marker: lists have no keys
            expect_key = False
        elif tok in "}]":
            stack.pop()
            expect_key = False
        elif tok == ",":
            expect_key = bool(stack) and "\0list" not in stack[-1]
        elif tok.startswith('"') and expect_key:
            expect_key = False
            name = json.loads(tok)
            if name == key and name in stack[-1]:
                return _line_at(text, stack[-1][name]), _line_at(text, pos)
            stack[-1][name] = pos
    return None, None


def _json_line_of_word(text: str, word: str) -> int | None:
    for tok, pos in _json_tokens(text):
        if tok.lstrip("-") == word.lstrip("-"):
            return _line_at(text, pos)
    return None


def _json_number_at(text: str) -> tuple[int | None, str | None]:
    """The line and spelling of the first number the loader refuses."""
    for tok, pos in _json_tokens(text):
        if tok[0] in "-0123456789":
            try:
                number = float(tok) if any(c in tok for c in ".eE") else int(tok)
            except ValueError:
                continue
            if _number_problem(number):
                return _line_at(text, pos), tok
    return None, None


# --- TOML ---------------------------------------------------------------------------------------


def _load_toml(text: str, source: str, limits: Limits) -> Any:
    bound = text.count("=") + text.count(",") + text.count("[") + 1
    if bound > 2 * limits.max_nodes:
        raise _too_many(source, limits.max_nodes)
    try:
        data = tomllib.loads(text)  # refuses duplicate keys itself, naming the second only
    except tomllib.TOMLDecodeError as exc:
        from smpdevice.loader_toml import duplicate

        try:
            twice = duplicate(text, str(exc))
        except Exception:  # only the lines of an error are sought: tomllib's own words then
            twice = None
        if twice is not None:
            raise _duplicate(source, *twice) from None
        raise LoadError(source, f"is not valid TOML: {exc}", "fix the syntax") from None
    except RecursionError:
        raise _too_deep(source, limits.max_depth) from None
    _walk(data, source, limits)
    return data
