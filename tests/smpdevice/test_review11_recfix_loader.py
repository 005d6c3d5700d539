"""Review 11 (REVA F3): a key twice in a TOML file is refused naming both lines.

docs/integration.md ("Files: how they are read"): every file, `.toml` as TOML, goes through one
strict loader, and "a key twice in one mapping is refused, naming both lines (the last one never
silently wins)". YAML and JSON did; TOML named only the second line (tomllib's own message,
called a syntax error).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.loader import LoadError, load_bytes, load_file

TWICE = [  # (file, key named, first line, second line)
    ('technician = "ana"\nport = "pensim://"\ntechnician = "bob"\n', "technician", 1, 3),
    ("[t]\nx = 1\n[t]\ny = 2\n", "t", 1, 3),  # a table header twice
    ("[t]\nx = 1\n[u]\n[t.x]\n", "t.x", 2, 4),  # a value, then a table of the same name
    ("a.b = 1\na.b = 2\n", "a.b", 1, 2),  # dotted keys
    ("a = 1\na.b = 2\n", "a", 1, 2),  # a value cannot become a table
    ('[t]\n  x = 1\n  "x" = 2\n', "t.x", 2, 3),  # quoted or bare: the same key
    ("[[p]]\nx = 1\n[[p]]\nx = 1\nx = 2\n", "p.x", 4, 5),  # each [[p]] element is its own
    ('a = """\nb = 1\n"""\nb = 2\nb = 3\n', "b", 4, 5),  # not fooled by a multi-line string
    ("m = [\n  1,\n]\nz = 0\nm = [\n  2,\n]\n", "m", 1, 5),  # the second spans lines: its start
    ("x = [[1], [2]]\n[s]\ny = 'a]'\ny = 1\n", "s.y", 3, 4),  # brackets in values and strings
    ("[a]\nb.c = 1\n[a.b]\n", "a.b", 2, 3),  # a table a dotted key made is closed
    ("x = 1\r\ny = 2\r\nx = 3\r\n", "x", 1, 3),  # CRLF
]


@pytest.mark.parametrize(("text", "key", "first", "second"), TWICE)
def test_a_toml_key_twice_names_both_lines(text, key, first, second):
    with pytest.raises(LoadError) as refused:
        load_bytes(text, source="station.toml", kind="toml")
    message = str(refused.value)
    assert f"the key '{key}' appears twice in one mapping on lines {first} and {second}" \
        in message, message
    assert refused.value.line == second
    assert "\n" not in message and "not valid TOML" not in message


def test_a_key_twice_in_one_inline_table_names_its_line():
    with pytest.raises(LoadError, match=r"the key 'x' appears twice in one mapping "
                                        r"\(the second on line 2\)"):
        load_bytes("a = 1\nt = {x = 1, x = 2}\n", source="s.toml", kind="toml")


def test_other_toml_errors_are_still_syntax_errors():
    with pytest.raises(LoadError, match=r"is not valid TOML: .*; fix the syntax"):
        load_bytes("a = \n", source="s.toml", kind="toml")
    assert load_bytes("[[p]]\nx = 1\n[[p]]\nx = 1\n", kind="toml") == {"p": [{"x": 1}, {"x": 1}]}


def test_smp_config_check_names_both_lines():
    config = Path(os.environ["SMP_CONFIG"])
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('technician = "ana"\nport = "pensim://"\ntechnician = "bob"\n')
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1, result.output
    assert "'technician' appears twice in one mapping on lines 1 and 3" in result.stderr


def test_a_toml_profile_names_both_lines(tmp_path):
    profile = tmp_path / "p.toml"
    profile.write_text('schema_version = 1\nsession_kind = "base_density"\nschema_version = 1\n')
    with pytest.raises(LoadError, match="on lines 1 and 3"):
        load_file(profile)
    result = CliRunner().invoke(main, ["profile", "check", str(profile)])
    assert result.exit_code == 1, result.output
    assert "'schema_version' appears twice in one mapping on lines 1 and 3" in result.stderr
