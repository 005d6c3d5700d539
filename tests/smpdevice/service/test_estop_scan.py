"""The E-stop is told in any message within the size cap (review 10, R01), by `estop_scan`:
a top-level or batch-element "method": "pen.estop", whatever else the message holds (NaN, huge
numbers, nesting of any depth, a byte order mark, duplicate members, broken syntax elsewhere);
and nothing else is one (the text "pen.estop" anywhere else, a method deeper down)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.service import rpc
from smpdevice.service.estop_scan import ESTOP, Found, find_estop
from smpdevice.service.limits import MAX_MESSAGE_BYTES

E = '{"jsonrpc":"2.0","id":7,"method":"pen.estop"}'
DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("raw, batch", [
    ("[" + E + ',{"jsonrpc":"2.0","id":8,"method":"rpc.ping","params":{"x":NaN}}]', True),
    ('{"jsonrpc":"2.0","id":7,"method":"pen.estop","params":{"a":' + DEEP + "}}", False),
    ('{"params":{"a":' + DEEP + '},"id":7,"method":"pen\\u002eestop"}', False),
    ("[" + '{"a":' + DEEP + "}," + E + "]", True),
    ("\ufeff" + E, False),
    (("\ufeff" + E).encode(), False),
    ('{"id":5,"params":{"x":' + "9" * 5000 + '},"method":"pen.estop"}', False),
    (b'{"id":5,"params":{"x":"\xff"},"method":"pen.estop"}', False),  # not UTF-8 elsewhere
    ('{"method":"pen.estop","method":"pen.start","id":1}', False),  # any of the duplicates
    ('{"method":"pen.start","id":1,"method":"pen.estop"}', False),
    ('{"id":1,"params":{"x":[1,2,}},"method":"pen.estop"}', False),  # broken before it
    ('[{"id":4,"method":"pen.estop"', True),  # unterminated after it
], ids=["batch-with-nan", "deep-params", "deep-params-first-escaped", "deep-batch", "bom",
        "bom-bytes", "huge-int", "bad-utf8", "dup-first", "dup-last", "broken-before",
        "unterminated"])
def test_an_estop_within_the_cap_is_told_whatever_else_the_message_holds(raw, batch):
    found = find_estop(raw)
    assert found is not None and found.batch == batch, found
    if batch:
        with pytest.raises(rpc.RpcError) as info:
            rpc.parse(raw)
        assert info.value.estop
    else:
        assert rpc.parse(raw).method == ESTOP


@pytest.mark.parametrize("raw", [
    '{"jsonrpc":"2.0","id":1,"method":"pen.set_zone","params":{"zone":"pen.estop"}}',
    '{"method":"pen.set_zone","params":{"zone":"\\"method\\":\\"pen.estop\\""}}',
    '{"method":"rpc.ping","params":{"method":"pen.estop"}}',
    '[[{"method":"pen.estop"}]]',
    '{"params":[' + "[" * 3000 + '{"method":"pen.estop"}' + "]" * 3000 + "]}",
    '{"a":[' + DEEP + '],"b":{"method":"pen.estop"}}',
    '{"pen.estop":"method"}',
    '{"method":["pen.estop"]}',
    '{"method":"pen.estop2"}',
    '"method":"pen.estop"',
    '{"zone":"estop ' + "x" * 1000 + '"}',
])
def test_nothing_else_is_an_estop(raw):
    assert find_estop(raw) is None


def test_the_id_of_a_json_estop_is_echoed_and_an_unreadable_one_is_null():
    assert find_estop('{"id":"a","method":"pen.estop","params":{"x":NaN}}') == \
        Found(False, "a", True)
    assert find_estop('{"method":"pen.estop"}') == Found(False, None, False)  # notification
    assert find_estop('{"id":3,"method":"pen.estop",') == Found(False, None, True)


# ------------------------------------------------------------------ properties

_KEYS = st.sampled_from(["method", "id", "params", "jsonrpc", "x", "pen.estop", "m\u00e9thod"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                     st.sampled_from(["pen.estop", "method", "estop", "pen.stop", ""]),
                     st.text(max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.lists(st.tuples(_KEYS, inner), max_size=4).map(lambda pairs: _Pairs(pairs))),
    max_leaves=20)


class _Pairs(list):
    """An object as its members in order, duplicates allowed."""


def _dump(value: Any, ascii_: bool) -> str:
    if isinstance(value, _Pairs):
        return "{" + ",".join(json.dumps(k, ensure_ascii=ascii_) + ":" + _dump(v, ascii_)
                              for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v, ascii_) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_)


def _names_estop(value: Any) -> bool:
    return isinstance(value, _Pairs) and any(k == "method" and v == ESTOP for k, v in value)


def _reference(value: Any) -> Found | None:
    """What the rule says, from the parsed message itself."""
    if _names_estop(value):
        return Found(False)
    if isinstance(value, list) and not isinstance(value, _Pairs) \
            and any(map(_names_estop, value)):
        return Found(True)
    return None


def _escaped(text: str) -> str:
    """Every letter of "pen.estop" and "method" as a \\u escape, where they stand as strings."""
    for word in ('"pen.estop"', '"method"'):
        text = text.replace(word, '"' + "".join(f"\\u{ord(c):04x}" for c in word[1:-1]) + '"')
    return text


@settings(max_examples=300, deadline=None)
@given(_VALUES, st.booleans(), st.booleans())
def test_the_scan_agrees_with_the_rule_on_any_json_message(value, ascii_, escape):
    text = _dump(value, ascii_)
    if escape:
        text = _escaped(text)
    found, want = find_estop(text), _reference(value)
    assert (found is None) == (want is None), text
    if want is not None:
        assert found is not None and found.batch == want.batch, text


_WRAPPINGS = [
    lambda e: e,
    lambda e: "\ufeff" + e,
    lambda e: " \n\t" + e + " \n",
    lambda e: "[" + e + "]",
    lambda e: '[1,"x",[' + DEEP + "]," + e + ',{"x":NaN}]',
    lambda e: "[" + e + ',{"x":1e999,"y":' + "9" * 5000 + "}]",
    lambda e: '[{"params":' + DEEP + "}," + e + ",]",
]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(range(len(_WRAPPINGS))),
       st.one_of(st.none(), st.integers(-2**62, 2**62), st.text(max_size=10)),
       st.sampled_from(["params", "x", "jsonrpc"]), _VALUES, st.booleans(), st.booleans())
def test_a_valid_estop_object_in_any_wrapping_is_told_once(wrap, ident, other, extra, first,
                                                           escape):
    members = [("jsonrpc", "2.0"), ("id", ident), ("method", ESTOP)]
    members.insert(0 if first else len(members), (other, extra))
    obj = _dump(_Pairs(members), True)
    raw = _WRAPPINGS[wrap](_escaped(obj) if escape else obj)
    assert len(raw.encode()) <= MAX_MESSAGE_BYTES
    found = find_estop(raw)
    assert found is not None, raw
    try:
        request = rpc.parse(raw)
    except rpc.RpcError as exc:  # a batch: refused, flagged for the connection to run it
        assert exc.estop and found.batch
        return
    assert request.method == ESTOP and request.params == {} and not found.batch
    if other != "id" and wrap in (0, 1, 2):  # a lone JSON object: its id echoed
        assert request.id == ident


@pytest.mark.parametrize("ident", [-10**18, -(2**63 - 1), 2**63 - 1, -999, 10**18])
def test_an_estops_wide_integer_id_is_echoed_whatever_its_sign(ident):
    """A 19-digit negative id was dropped by the scan (its text has 20 characters), while
    parse echoes any integer within +-(2**63 - 1)."""
    raw = json.dumps({"jsonrpc": "2.0", "id": ident, "method": ESTOP})
    assert rpc.parse(raw).id == ident


@pytest.mark.parametrize("ident", [2**63, -(2**63), 10**19, -(10**30)])
def test_an_estops_id_out_of_range_is_answered_with_a_null_id(ident):
    raw = json.dumps({"jsonrpc": "2.0", "id": ident, "method": ESTOP})
    request = rpc.parse(raw)
    assert request.method == ESTOP and request.id is None and request.has_id
