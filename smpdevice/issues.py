"""One problem in a document (profile, envelope): where, what value, which rule.

Shared by profiles and the envelope so that both print the same one-line-per-issue format:
`field.path = value: rule`. Pydantic's own messages (multi-line, with a URL) never reach a user.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from smpdevice.checks import not_in_line


@dataclass(frozen=True)
class Issue:
    """One problem: where (`path`, e.g. `zones.hairline.depth_mm`), what, and why."""

    path: str
    value: Any
    rule: str
    missing: bool = False  # the field is absent, so there is no value to show

    def __str__(self) -> str:
        # A path and a rule may hold a file's own text (a key, a zone name listed): escaped,
        # so no control or bidi character reaches a terminal (review 12 REVF-7).
        rule = escaped(self.rule)
        if not self.path:  # the file or the document as a whole: the rule says it all
            return rule
        # A key may be as long as the file: paths are cut short too (once escaped, so that
        # a path of escapes is no longer).
        path = escaped(self.path)
        path = path if len(path) <= 100 else path[:97] + "..."
        if self.missing:
            return f"{path}: {rule}"
        return f"{path} = {show(self.value)}: {rule}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "value": None if self.missing else jsonable(self.value),
                "rule": self.rule}


_RULES = {
    "extra_forbidden": "is not a known field (check the spelling)",
    "missing": "is required",
    "finite_number": "is not a finite number",
    "float_type": "is not a number (write it without quotes; true/false are not numbers)",
    "int_type": "is not a whole number (write it without quotes)",
    "string_type": "is not text",
    "bool_type": "is not true or false",
    "dict_type": "is not a mapping",
    "list_type": "is not a list",
    "model_type": "is not a mapping",
}


# pydantic bound error -> (its context key, wording against a limit, wording against a cap)
_BOUNDS = {"less_than_equal": ("le", "must be at most", "is above"),
           "less_than": ("lt", "must be below", "is not below"),
           "greater_than_equal": ("ge", "must be at least", "is below"),
           "greater_than": ("gt", "must be above", "is not above")}
_UNITS = (("_mm", " mm"), ("_hz", " Hz"), ("_pct", " %"), ("_ms", " ms"), ("_s", " s"))


def unit_of(name: str) -> str:
    """The unit a field's name carries (`depth_mm` -> ' mm'), or ''."""
    return next((unit for suffix, unit in _UNITS if name.endswith(suffix)), "")


def from_pydantic(exc: ValidationError, prefix: str = "", rules: dict[str, str] | None = None,
                  bound: str | None = None) -> list[Issue]:
    """Every error of a pydantic ValidationError as an Issue, with plain-language rules.
    `bound` names what the model's range bounds are (e.g. "the absolute cap")."""
    table = {**_RULES, **(rules or {})}
    out = []
    for err in exc.errors(include_url=False):
        path = join(prefix, path_of(err["loc"]))
        kind = err["type"]
        rule = table.get(kind) or rule_text(err)
        if kind in _BOUNDS and err.get("ctx"):
            key, plain, against = _BOUNDS[kind]
            limit = f"{err['ctx'][key]:g}{unit_of(path)}"
            rule = f"{against} {bound} {limit}" if bound else f"{plain} {limit}"
        if kind in ("float_type", "int_type") and isinstance(err.get("input"), int) \
                and not isinstance(err.get("input"), bool):
            rule = "is too large a number"
        whole = not err["loc"]  # a rule across fields (e.g. floor above ceiling): no one value
        out.append(Issue(path, err.get("input"), rule, missing=kind == "missing" or whole))
    return out


def rule_text(err: Any) -> str:
    msg: str = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg[0].lower() + msg[1:] if msg else msg


def path_of(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def escaped(text: str) -> str:
    """`text` with every character a terminal would act on or hide written as its Python
    escape (as `repr` writes it): control characters (ESC starts title and clipboard
    sequences), bidi controls (they reverse the rest of a line), line separators and every
    other character that is not printable. Plain text is returned as it is."""
    if text.isprintable() and not any(map(not_in_line, text)):
        return text
    return "".join(repr(c)[1:-1] if not c.isprintable() or not_in_line(c) else c
                   for c in text)


def show(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        text = str(value) if value.bit_length() < 4000 else f"<{value.bit_length()}-bit integer>"
    else:
        text = repr(value) if isinstance(value, str) else json.dumps(jsonable(value))
    return text if len(text) <= 80 else text[:77] + "..."


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)[:200]
