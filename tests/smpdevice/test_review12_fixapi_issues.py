"""A file's own text (a key, a zone name) shown in an issue line never reaches the terminal
raw: control characters (ESC starts title and clipboard sequences, BEL ends them), bidi
controls (they reverse the rest of the line), line separators and other unprintable
characters are written as their escapes, in the path and in the rule (review 12 REVF-7)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.issues import Issue, escaped
from smpdevice.sessions.profiles import ProfileError, load_profile

ROOT = Path(__file__).resolve().parents[2]
PROFILE = (ROOT / "examples" / "session1_base_density.yaml").read_text()
# What a terminal acts on or hides: ESC/BEL (OSC title), CSI, C1 (U+009B is a one-byte CSI),
# bidi overrides and isolates, line and paragraph separators, NUL-free controls, a zero-width.
NASTY = ["\x1b]0;pwned\x07", "\x1b]52;c;aGk=\x07", "\x9b2J", "\u202e", "\u2066", "\u2028",
         "\u2029", "\x7f", "\r", "\u200b"]


def unsafe(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if c != "\n" and (
        not c.isprintable() or unicodedata.bidirectional(c) in {
            "LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"})]


@pytest.mark.parametrize("nasty", NASTY)
def test_an_issue_line_escapes_the_path_and_the_rule(nasty):
    issue = Issue(f"zones.top{nasty}.depth_mm", 1, f"is not one of (crown, top{nasty})")
    line = str(issue)
    assert not unsafe(line), line
    assert line.count(repr(nasty)[1:-1]) == 2, line  # still named, as its escape
    assert not unsafe(str(Issue("", None, f"the file{nasty}")))
    assert not unsafe(str(Issue(f"x{nasty}", None, "is required", missing=True)))


def test_plain_text_and_other_scripts_are_shown_as_they_are():
    for text in ("zones.hairline.depth_mm", "zones.couronne_é.depth_mm", "plan[0].zone",
                 "zones.头顶", "a\\u202e (a backslash written in the file)"):
        assert escaped(text) == text


def test_a_long_path_of_escapes_is_still_cut_short():
    line = str(Issue("\x1b" * 500, 1, "is not a known field"))
    assert len(line) < 130 and not unsafe(line)


@pytest.mark.parametrize(("written", "nasty"), [("\\e]0;pwned\\a", "\x1b]0;pwned\x07"),
                                               ("\\u202e", "\u202e"), ("\\L", "\u2028")])
def test_profile_check_and_run_never_print_a_files_control_characters(tmp_path, written,
                                                                       nasty):
    """integration.md: `smp profile check` prints one line per issue on stderr, each starting
    with the file name; `smp run` raises the same issues in a ProfileError. (A raw control
    character in the file is refused by the loader; YAML's escapes in quotes get through.)"""
    text = PROFILE.replace("  top: ", f'  "top{written}": ')
    text += f'"extra{written}": 1\n'
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["profile", "check", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert not unsafe(result.output), result.output
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    assert sum(repr(nasty)[1:-1] in line for line in lines) >= 3, lines  # key, zone, zone list
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert not unsafe(str(err.value)), str(err.value)


def test_envelope_check_never_prints_a_files_control_characters(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text('"crown\\e]0;pwned\\a":\n  max_pass_s: 100\n'
                    'hairline:\n  "depth\\u202e_mm": 1\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["envelope", "check", str(path)])
    assert result.exit_code == 1
    assert "\\x1b]0;pwned\\x07" in result.output and "\\u202e" in result.output, result.output
    assert not unsafe(result.output), result.output
