"""Session 20 (issue 13): the catalogue reads each field's wire annotation by evaluating its text
once (`messages._hint`), not by `typing.get_type_hints` per class; every message must still get
exactly the annotation `get_type_hints` gives, so WIRE, STRUCT, CRC_EXTRA and SCHEMA_HASH (and so
the vectors) stay what they were."""

from __future__ import annotations

from dataclasses import fields
from typing import get_type_hints

from firmware_protocol import messages


def test_each_field_hint_is_the_one_get_type_hints_gives():
    checked = 0
    for cls in messages.REGISTRY.values():
        hints = get_type_hints(cls, include_extras=True)
        for f in fields(cls):
            assert messages._hint(f.type, cls.__module__) == hints[f.name], (cls.__name__, f.name)
            checked += 1
    assert checked > 40  # every field of every message, inherited ones included


def test_a_non_text_annotation_is_taken_as_it_is():
    assert messages._hint(int, messages.__name__) is int
