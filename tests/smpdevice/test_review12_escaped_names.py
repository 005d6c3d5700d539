"""A key from a file reaches the terminal escaped, also outside issue lines (review 12, after
REVF-7): a screening file's unknown question and a TOML key defined twice. ESC starts terminal
title and clipboard sequences; U+202E reverses the rest of the line."""

from __future__ import annotations

import pytest

from smpdevice.errors import SmpError
from smpdevice.loader import load_file
from smpdevice.sessions.screening import load_screening_file

HOSTILE = ["extra\x1b]0;pwned\x07", "x\u202ey", "a\x9bb", "new\nline"]


@pytest.mark.parametrize("key", HOSTILE)
def test_an_unknown_screening_question_is_named_escaped(tmp_path, key):
    path = tmp_path / "screening.json"
    import json

    path.write_text(json.dumps({key: False}), encoding="utf-8")
    with pytest.raises(SmpError) as caught:
        load_screening_file(path)
    text = str(caught.value)
    assert "unknown questions" in text
    assert not any(c in text for c in "\x1b\x07\u202e\x9b\n"), text
    assert repr(key)[1:-1][:12] in text  # named as its escape, so the technician can find it


@pytest.mark.parametrize("key", HOSTILE)
def test_a_toml_key_given_twice_is_named_escaped(tmp_path, key):
    quoted = key.encode("unicode_escape").decode().replace('"', '\\"')
    path = tmp_path / "profile.toml"
    path.write_text(f'"{quoted}" = 1\n"{quoted}" = 2\n', encoding="utf-8")
    with pytest.raises(SmpError) as caught:
        load_file(path)
    text = str(caught.value)
    assert "twice" in text or "defined" in text or "more than once" in text, text
    assert not any(c in text for c in "\x1b\x07\u202e\x9b\n"), text
