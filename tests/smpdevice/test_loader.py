"""The strict loader (smpdevice.loader): every file the project reads goes through it.

Behaviour only: no test here asserts a time (bench/loader.py measures that)."""

from __future__ import annotations

import json
import math
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.errors import SmpError
from smpdevice.loader import (
    DEFAULT_MAX_BYTES,
    MAX_SAFE_INT,
    Limits,
    LoadError,
    load_bytes,
    load_file,
    read_capped,
)

PROFILE_YAML = """\
schema_version: 1
session_kind: base_density
client_ref: C-0042
zones:
  crown: {needle: 1RL 0.25mm, depth_mm: 0.4, speed_hz: 90, duty_pct: 40, period_ms: 120}
plan:
  - {zone: crown, duration_s: 3}
"""


def refused(text: str | bytes, kind: str = "yaml", **limits: int) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_bytes(text, kind=kind, source="f", limits=Limits(**limits))
    assert isinstance(info.value, SmpError)
    return info.value


# --- duplicate keys -----------------------------------------------------------------------------


def test_duplicate_yaml_key_is_refused_naming_both_lines():
    err = refused("client_ref: C-0042\nzones: {}\nclient_ref: C-0099\n")
    assert "'client_ref'" in str(err) and "lines 1 and 3" in str(err)
    assert err.line == 3


def test_duplicate_json_key_is_refused_naming_both_lines():
    text = '{"zones": {"a": 1, "client_ref": 2},\n "client_ref": "C-1",\n\n "client_ref": "C-2"}'
    err = refused(text, "json")
    assert "'client_ref'" in str(err) and "lines 2 and 4" in str(err)


def test_same_key_in_different_mappings_is_fine():
    assert load_bytes("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}
    assert load_bytes('{"a": {"x": 1}, "b": [{"x": 2}, {"x": 3}]}', kind="json")["b"][1] == {"x": 3}


def test_duplicate_toml_key_is_refused():
    assert "on lines 1 and 2" in str(refused("a = 1\na = 2\n", "toml"))


# --- anchors, aliases, tags, directives ---------------------------------------------------------


def test_billion_laughs_is_refused_at_its_first_anchor():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(9))
    err = refused(bomb)
    assert "anchor &a" in str(err) and err.line == 1
    assert len(str(err)) < 200  # the expansion never reaches the message


@pytest.mark.parametrize("text, word", [
    ("a: &x 1\n", "anchor &x"), ("a: *x\n", "alias *x"), ("a: !!str 1\n", "tag"),
    ("a: !custom 1\n", "tag"), ("a: !!python/object:os.system x\n", "tag"),
    ("%YAML 1.1\n---\na: 1\n", "directives"), ("a: 1\n---\nb: 2\n", "more than one"),
])
def test_yaml_features_that_hide_content_are_refused(text, word):
    assert word in str(refused(text))


# --- YAML 1.2 scalars ---------------------------------------------------------------------------


def test_yaml_12_core_schema_numbers_and_booleans():
    data = load_bytes("a: 1e9\nb: yes\nc: on\nd: no\ne: 0o17\nf: 0x1F\ng: 1_000\nh: .5\n"
                      "i: true\nj: ~\nk: '0.9'\nl: -3\nm: 2.5E-3\nn: 010\no: 0b11\n")
    assert data == {"a": 1e9, "b": "yes", "c": "on", "d": "no", "e": 15, "f": 31, "g": "1_000",
                    "h": 0.5, "i": True, "j": None, "k": "0.9", "l": -3, "m": 0.0025, "n": 10,
                    "o": "0b11"}
    assert isinstance(data["a"], float)


@pytest.mark.parametrize("literal", [".inf", "-.inf", "+.INF", ".nan", ".NaN", "1e999", "-1e400"])
def test_yaml_non_finite_numbers_are_refused(literal):
    err = refused(f"x: 1\nmax_pass_s: {literal}\n")
    assert "not finite" in str(err) and err.line == 2


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-2E400"])
def test_json_non_finite_numbers_are_refused(literal):
    err = refused(f'{{"x": 1,\n "max_pass_s": {literal}}}', "json")
    assert "not finite" in str(err) and err.line == 2


@pytest.mark.parametrize("literal", ["inf", "-inf", "nan", "+nan"])
def test_toml_non_finite_numbers_are_refused(literal):
    assert "not finite" in str(refused(f"max_pass_s = {literal}\n", "toml"))


@pytest.mark.parametrize("kind, text", [
    ("yaml", f"a: {MAX_SAFE_INT}\n"), ("json", f'{{"a": -{MAX_SAFE_INT}}}'),
    ("yaml", "a: " + "9" * 5000 + "\n"), ("json", '{"a": ' + "9" * 5000 + "}"),
    ("toml", f"a = {MAX_SAFE_INT * 4}\n"),
])
def test_huge_integers_are_refused(kind, text):
    message = str(refused(text, kind))
    assert "too large" in message or "too long" in message


def test_keys_must_be_text():
    assert "not text" in str(refused("1: a\n"))
    assert "not text" in str(refused("true: a\n"))
    assert "not text" in str(refused("[a]: 1\n"))


# --- size, depth and count caps ----------------------------------------------------------------


def test_a_file_above_the_cap_is_refused_naming_its_size_and_the_cap(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * DEFAULT_MAX_BYTES)
    with pytest.raises(LoadError) as info:
        load_file(path)
    assert "1,048,576 bytes" in str(info.value) and "cap" in str(info.value)
    assert str(path) in str(info.value)


def test_a_huge_sparse_file_is_refused_after_reading_only_cap_plus_one_bytes(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(50 * 2**30)  # 50 GiB of holes: reading it whole would never finish
    with pytest.raises(LoadError, match="above the cap"):
        load_file(path)


def test_read_capped_returns_the_whole_file_at_the_cap(tmp_path):
    path = tmp_path / "exact.yaml"
    path.write_bytes(b"a" * 100)
    assert read_capped(path, 100) == b"a" * 100
    with pytest.raises(LoadError):
        read_capped(path, 99)


def test_nesting_deeper_than_the_cap_is_refused():
    block = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 40))
    assert "nested more than 32" in str(refused(block))
    assert "nested more than" in str(refused('{"a": ' + "[" * 40 + "]" * 40 + "}", "json"))
    assert "nested more than 4" in str(refused("a: [[[[[1]]]]]\n", max_depth=4))


def test_more_values_than_the_cap_are_refused():
    text = "a: [" + ",".join(["1"] * 200) + "]\n"
    assert "more than 100 values" in str(refused(text, max_nodes=100))
    assert "more than 100 values" in str(refused(json.dumps({"a": [1] * 300}), "json",
                                                 max_nodes=100))
    assert load_bytes(text)["a"] == [1] * 200


# --- files that are not text files --------------------------------------------------------------


def test_missing_directory_binary_non_utf8_empty(tmp_path):
    cases = {
        "missing.yaml": ("no such file", None),
        "dir.yaml": ("is a directory", None),
        "binary.yaml": ("not UTF-8", bytes(range(256))),
        "latin1.json": ("not UTF-8", '{"a": "café"}'.encode("latin-1")),
        "empty.yaml": ("empty", b""),
        "blank.json": ("empty", b"  \n\n"),
        "nul.yaml": ("control character", b"a: 1\nb: \x00\n"),
    }
    (tmp_path / "dir.yaml").mkdir()
    for name, (_, content) in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    for name, (word, _) in cases.items():
        with pytest.raises(LoadError) as info:
            load_file(tmp_path / name)
        assert word in str(info.value), name
        assert "\n" not in str(info.value)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(path) == {"a": 1}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    with pytest.raises(LoadError, match="not a regular file"):
        load_file(fifo)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    with pytest.raises(LoadError, match="cannot be opened"):
        load_file(path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n", "null\n"])
def test_top_level_must_be_a_mapping(text):
    assert "top level" in str(refused(text))


# --- properties ---------------------------------------------------------------------------------

_finite = st.floats(allow_nan=False, allow_infinity=False)
_ints = st.integers(min_value=-(MAX_SAFE_INT - 1), max_value=MAX_SAFE_INT - 1)
_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn")), max_size=20)
_values = st.recursive(
    st.none() | st.booleans() | _finite | _ints | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)
_documents = st.dictionaries(_text, _values, max_size=5)


# One test for both readers: drawing a nested document is nearly all of the CPU (loading it is
# a tenth), so each document drawn is read both ways, as the two tests that drew their own did.
@given(_documents)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_valid_json_round_trips_read_as_json_and_as_yaml_12(data):
    assert load_bytes(json.dumps(data), kind="json") == data
    # JSON is YAML 1.2: a YAML 1.1 reader turns "1e9" into text, this one must not.
    text = json.dumps(data, ensure_ascii=False)
    if any(c in text for c in "\x85\u2028\u2029"):
        with pytest.raises(LoadError, match="YAML readers disagree"):
            load_bytes(text, kind="yaml")
    else:
        assert load_bytes(text, kind="yaml") == data


@pytest.mark.parametrize("char", ["\x85", "\u2028", "\u2029"])
@pytest.mark.parametrize("template", ['{{"a{c}b": 1}}', "name: a{c}b\n", "x: 1\nname: 'a{c}b'\n"])
def test_unicode_line_breaks_are_refused_by_name_not_misread(char, template):
    # libyaml reads them as line breaks (YAML 1.1): "a<U+2028>b" came back as "a b", or failed.
    text = template.format(c=char)
    with pytest.raises(LoadError, match=f"U\\+{ord(char):04X}") as err:
        load_bytes(text, kind="yaml")
    assert err.value.line == text.count("\n", 0, text.index(char)) + 1
    assert f"\\u{ord(char):04x}" in str(err.value)


_NASTY = ["&a ", "*a", "!!str ", "! ", "{", "}", "[", "]", ":", ": ", "- ", ",", "\n", "  ", "\t",
          "#", "'", '"', "\\", "\x00", "\x85", "\ufeff", "---\n", "...\n", "%YAML 1.2\n", ".inf",
          ".nan", "NaN", "Infinity", "1e999", "9" * 30, "0o17", "0x", "<<: ", "? ", "|", ">",
          "\u2028", "\ud800"]


# Built once, not at every draw of _mutated (building them was half its CPU); the same draws.
_EDITS = st.integers(1, 6)
_OPS = st.sampled_from(["insert", "delete", "replace", "duplicate"])
_PIECES = st.sampled_from(_NASTY) | st.text(max_size=3)
_CUT = st.integers(1, 8)


@st.composite
def _mutated(draw, base: str):
    text = base
    for _ in range(draw(_EDITS)):
        pos = draw(st.integers(0, len(text)))
        op = draw(_OPS)
        piece = draw(_PIECES)
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(_CUT):]
        elif op == "replace":
            text = text[:pos] + piece + text[pos + len(piece):]
        else:
            line = draw(st.sampled_from(text.splitlines(keepends=True) or [""]))
            text = text[:pos] + line + text[pos:]
    return text


def _only_load_errors(text: str, kind: str) -> None:
    try:
        data = load_bytes(text.encode("utf-8", "surrogatepass"), kind=kind)
    except LoadError as err:
        assert str(err) and err.source
        return
    assert isinstance(data, dict)
    stack = [data]
    while stack:  # whatever got through is plain, finite, in range
        value = stack.pop()
        if isinstance(value, dict):
            assert all(isinstance(k, str) for k in value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) < MAX_SAFE_INT
        else:
            assert value is None or isinstance(value, bool | str)


@given(_mutated(PROFILE_YAML))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_yaml_is_loaded_plain_or_refused_with_a_load_error(text):
    _only_load_errors(text, "yaml")


@given(_mutated(json.dumps(load_bytes(PROFILE_YAML), indent=1)))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_json_is_loaded_plain_or_refused_with_a_load_error(text):
    _only_load_errors(text, "json")


@given(st.binary(max_size=200), st.sampled_from(["yaml", "json", "toml"]))
@settings(max_examples=300)
def test_random_bytes_are_loaded_or_refused_with_a_load_error(raw, kind):
    try:  # anything but a LoadError escapes and fails the test
        data = load_bytes(raw, kind=kind)
    except LoadError as err:
        assert str(err)
        return
    assert isinstance(data, dict)
