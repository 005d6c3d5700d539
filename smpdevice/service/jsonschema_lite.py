"""A small JSON Schema validator for the subset the service's description uses.

Supported keywords: type (one or a list), properties, required, additionalProperties (false
only), minimum, maximum, exclusiveMinimum, minLength, maxLength, pattern, enum, items,
maxItems, minItems, maxProperties. Anything else in a schema is refused when the description
is built (`check_schema`), so the document never claims a rule that is not enforced.
"""

from __future__ import annotations

import math
import re
from typing import Any

from smpdevice.checks import line_problem

KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "minimum", "maximum",
    "exclusiveMinimum", "minLength", "maxLength", "pattern", "enum", "items", "maxItems",
    "minItems", "maxProperties", "description", "title", "default", "examples", "$comment",
})
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and _finite(v),
}


def _finite(value: float) -> bool:
    """math.isfinite, also for an integer too large for a float (OverflowError there)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


class SchemaViolation(ValueError):
    """`where` (a dotted path) breaks `rule`; the message names the value and the rule."""

    def __init__(self, where: str, value: Any, rule: str) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"{where or 'params'}: {rule} (got {shown})")
        self.where = where
        self.rule = rule


def check_schema(schema: dict[str, Any], where: str = "") -> None:
    """Refuse keywords this validator does not enforce (a promise must hold)."""
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"schema {where or '/'} uses unsupported keywords {sorted(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        check_schema(schema["items"], f"{where}[]")
    if schema.get("additionalProperties", False) not in (False,):
        raise ValueError(f"schema {where or '/'}: additionalProperties must be false")


def validate(schema: dict[str, Any], value: Any, where: str = "") -> None:
    """Raise `SchemaViolation` at the first rule `value` breaks."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_TYPES[n](value) for n in names):
            raise SchemaViolation(where, value, f"must be {' or '.join(names)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(where, value, f"must be one of {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        _number(schema, value, where)
    elif isinstance(value, str):
        _text(schema, value, where)
    elif isinstance(value, list):
        _array(schema, value, where)
    elif isinstance(value, dict):
        _object(schema, value, where)


def _number(schema: dict[str, Any], value: float, where: str) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        raise SchemaViolation(where, value, f"must be at least {schema['minimum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        raise SchemaViolation(where, value, f"must be above {schema['exclusiveMinimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        raise SchemaViolation(where, value, f"must be at most {schema['maximum']}")


def _text(schema: dict[str, Any], value: str, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaViolation(where, value, f"must have at least {schema['minLength']} "
                                            "characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaViolation(where, value, f"must have at most {schema['maxLength']} "
                                            "characters")
    if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
        raise SchemaViolation(where, value, _mismatch(schema["pattern"], value))


def _mismatch(pattern: str, value: str) -> str:
    """Why a text breaks its pattern: the one-line rule's own reason (`checks.line_problem`,
    the same words and order as the station's) when that is the cause."""
    problem = line_problem(value)
    return problem if problem is not None else f"must match {pattern}"


def _array(schema: dict[str, Any], value: list, where: str) -> None:
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaViolation(where, f"{len(value)} items", f"must have at most "
                                                             f"{schema['maxItems']} items")
    if len(value) < schema.get("minItems", 0):
        raise SchemaViolation(where, f"{len(value)} items", f"must have at least "
                                                             f"{schema['minItems']} items")
    if isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{where}[{i}]")


def _object(schema: dict[str, Any], value: dict, where: str) -> None:
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise SchemaViolation(where, f"{len(value)} keys",
                              f"must have at most {schema['maxProperties']} keys")
    props = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaViolation(f"{where}.{name}".lstrip("."), None, "is required")
    if "properties" in schema or schema.get("additionalProperties") is False:
        extra = [k for k in value if k not in props]
        if extra:
            raise SchemaViolation(f"{where}.{str(extra[0])[:40]}".lstrip("."), value[extra[0]],
                                  f"is not a known parameter (known: {', '.join(props) or 'none'})")
    for name, sub in props.items():
        if name in value:
            validate(sub, value[name], f"{where}.{name}".lstrip("."))
