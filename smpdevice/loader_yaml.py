"""YAML for the strict loader (`smpdevice.loader`): plain data built from PyYAML's event stream.

Working on events, not nodes, is what keeps anchors and aliases from ever expanding: each rule is
enforced as soon as its event is seen, so a bomb is refused after reading only its first part.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from smpdevice.loader import (
    Limits,
    LoadError,
    _duplicate,
    _kind_name,
    _number_problem,
    _too_deep,
    _too_many,
)


def load_yaml(raw: bytes, source: str, limits: Limits) -> Any:
    """The one document in `raw` (UTF-8, already checked) as plain data (YAML 1.2 core schema);
    LoadError otherwise. Bytes, not str: libyaml then skips a re-encoding (about 20 % faster)."""
    return _YamlBuilder(raw, source, limits).build()


# --------------------------------------------------------------------------------------

# NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR: line breaks to libyaml (YAML 1.1), plain text to YAML
# 1.2. Read either way they would change a value silently, so they are refused by name.
_UNICODE_BREAKS = {"\x85".encode(): "U+0085 (NEXT LINE)",
                   "\u2028".encode(): "U+2028 (LINE SEPARATOR)",
                   "\u2029".encode(): "U+2029 (PARAGRAPH SEPARATOR)"}

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution), plain scalars only:
# one pattern, each alternative anchored by fullmatch (linear: no nested quantifiers).
_PLAIN = re.compile(
    r"(?P<null>null|Null|NULL|~|)"
    r"|(?P<bool>true|True|TRUE|false|False|FALSE)"
    r"|(?P<int>[-+]?[0-9]+)"
    r"|(?P<oct>0o[0-7]+)"
    r"|(?P<hex>0x[0-9a-fA-F]+)"
    r"|(?P<float>[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)"
    r"|(?P<nonfinite>[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))"
)
# First characters a typed plain scalar can start with; anything else is text.
_MAYBE_TYPED = frozenset("0123456789+-.~nNtTfF")

try:  # libyaml: about 30x faster than the pure-Python parser
    _Parser: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - wheels without libyaml
    _Parser = yaml.SafeLoader


class _YamlBuilder:
    """Builds plain data from PyYAML's event stream, refusing what the rules forbid as soon as it
    is seen. Working on events (not nodes) is what keeps anchors and aliases from ever
    expanding."""

    def __init__(self, raw: bytes, source: str, limits: Limits):
        self.raw = raw
        self.source = source
        self.limits = limits

    def _refuse_unicode_breaks(self) -> None:
        for raw_char, name in _UNICODE_BREAKS.items():
            at = self.raw.find(raw_char)
            if at >= 0:
                raise LoadError(
                    self.source, f"holds the character {name}, which YAML readers disagree on",
                    f"write it as \\u{ord(raw_char.decode()):04x} inside double quotes, or use "
                    "a .json file", self.raw.count(b"\n", 0, at) + 1)

    def _fail(self, event: Any, problem: str, hint: str) -> LoadError:
        line = event.start_mark.line + 1 if getattr(event, "start_mark", None) else None
        return LoadError(self.source, problem, hint, line)

    def build(self) -> Any:
        self._refuse_unicode_breaks()
        parser = _Parser(self.raw)
        try:
            return self._build(parser)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            detail = " ".join(f"{exc.context or ''} {exc.problem or ''}".split())
            raise LoadError(self.source, f"is not valid YAML: {detail}", "fix the syntax",
                            mark.line + 1 if mark else None) from None
        except yaml.reader.ReaderError as exc:  # a control character
            line = self.raw.count(b"\n", 0, exc.position) + 1
            raise LoadError(self.source, f"holds the control character 0x{exc.character:02x}",
                            "remove it; a YAML file is plain text", line) from None
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise LoadError(self.source, f"is not valid YAML: {detail}", "fix the syntax") from None
        finally:
            parser.dispose()

    def _build(self, parser: Any) -> Any:
        # One loop, with the common case (a plain scalar) inlined: this is the hot path that
        # decides how long the largest accepted file takes (bench/loader.py).
        max_nodes, max_depth = self.limits.max_nodes, self.limits.max_depth
        scalar_event, mapping_start = yaml.ScalarEvent, yaml.MappingStartEvent
        ends = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
        nodes = 0
        root: list[Any] = []
        # Each frame: [container, pending key or _NO_KEY, key -> line (mappings only)]
        stack: list[list[Any]] = []
        frame: list[Any] | None = None
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is scalar_event:
                if event.anchor is not None or event.tag is not None:
                    raise self._hidden(event)
                nodes += 1
                if nodes > max_nodes:
                    raise _too_many(self.source, max_nodes, event.start_mark.line + 1)
                text = event.value
                if not event.implicit[0]:  # quoted or block scalar: always text
                    value: Any = text
                elif text and text[0] not in _MAYBE_TYPED:
                    value = text  # cannot be null, a boolean or a number: skip the regex
                else:
                    value = self._typed(event, text)
            elif kind in ends:
                value = stack.pop()[0]
            elif kind is mapping_start or kind is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag is not None:
                    raise self._hidden(event)
                nodes += 1
                if nodes > max_nodes:
                    raise _too_many(self.source, max_nodes, event.start_mark.line + 1)
                if len(stack) >= max_depth:
                    raise _too_deep(self.source, max_depth, event.start_mark.line + 1)
                if frame is not None and frame[1] is _NO_KEY and type(frame[0]) is dict:
                    raise self._fail(event, "a mapping key is a list or mapping, not text",
                                     "use a name as the key")
                frame = [{}, _NO_KEY, {}] if kind is mapping_start else [[], _NO_KEY, None]
                stack.append(frame)
                continue
            elif kind is yaml.AliasEvent:
                raise self._fail(event, f"the alias *{event.anchor} is not accepted",
                                 "write the value out in full (anchors and aliases are refused)")
            elif kind is yaml.DocumentStartEvent:
                if root or event.version or event.tags:
                    raise self._fail(event, "the file holds more than one YAML document"
                                     if root else "YAML directives (%YAML, %TAG) are not accepted",
                                     "keep one document, without directives")
                continue
            elif kind is yaml.StreamEndEvent:
                break
            else:  # stream start, document end
                continue
            # Add `value` to the open container (or make it the document).
            if not stack:
                root.append(value)
                frame = None
                continue
            frame = stack[-1]
            container = frame[0]
            if frame[2] is None:
                container.append(value)
            elif frame[1] is _NO_KEY:  # this value is a key
                if type(value) is not str:
                    raise self._fail(event, f"the key {_show(value)} is {_kind_name(value)}, "
                                     "not text", "quote it, or use a name")
                if value in container:
                    raise _duplicate(self.source, value, frame[2][value],
                                     event.start_mark.line + 1)
                frame[2][value] = event.start_mark.line + 1
                frame[1] = value
            else:
                container[frame[1]] = value
                frame[1] = _NO_KEY
        return root[0] if root else None

    def _hidden(self, event: Any) -> LoadError:
        if event.anchor is not None:
            return self._fail(event, f"the anchor &{event.anchor} is not accepted",
                              "write values out in full (anchors and aliases are refused)")
        return self._fail(event, f"the tag {event.tag} is not accepted",
                          "remove the tag; values are typed by how they are written")

    def _typed(self, event: Any, text: str) -> Any:
        """A plain scalar resolved by the YAML 1.2 core schema."""
        m = _PLAIN.fullmatch(text)
        if m is None:
            return text
        kind = m.lastgroup
        if kind == "null":
            return None
        if kind == "bool":
            return text in ("true", "True", "TRUE")
        if kind == "nonfinite":
            raise self._fail(event, f"the number {text} is not finite",
                             "use a finite number in the allowed range")
        if len(text) > 40:  # int() of a huge digit string is itself slow; no limit needs it
            raise self._fail(event, f"the number {text[:20]}... is too long "
                             f"({len(text)} characters)",
                             "use a finite number in range (quote it if it is text)")
        number: float = (int(text) if kind == "int" else int(text[2:], 8) if kind == "oct" else
                         int(text[2:], 16) if kind == "hex" else float(text))
        problem = _number_problem(number, text)
        if problem:
            raise self._fail(event, problem, "use a finite number in the allowed range")
        return number


_NO_KEY = object()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
