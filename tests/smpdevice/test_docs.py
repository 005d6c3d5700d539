"""The docs tell the truth: every command a user is told to type runs, and generated parts match.

Convention in README.md and docs/*.md: a line starting with `$ ` inside a ```console block is a
command the reader is told to type, and it must work on the built-in simulator. Commands of one
page run in order in one fresh data directory (so `smp calibrate --auto` before `smp run` works).
Commands that need hardware or another process, or run until Ctrl-C, are shown without `$ `.
An `smp` line runs in this process (tests/smpdevice/shell.py; its `pensim://` pens on virtual
time, SMP_SIM_CLOCK=virtual), any other line in bash.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from smpdevice.control.diagram import state_diagram_mermaid
from tests.smpdevice import shell

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONSOLE_BLOCK = re.compile(r"```console\n(.*?)```", re.S)


def commands(page: Path) -> list[str]:
    out = []
    for block in CONSOLE_BLOCK.findall(page.read_text()):
        out += [line[2:].strip() for line in block.splitlines() if line.startswith("$ ")]
    return out


def test_every_page_with_commands_is_found():
    assert sum(len(commands(p)) for p in PAGES) >= 15


@pytest.mark.parametrize("page", [p for p in PAGES if commands(p)], ids=lambda p: p.name)
def test_every_command_in_the_docs_runs(page, tmp_path):
    env = {
        **os.environ,
        "SMP_DATA_DIR": str(tmp_path / "data"),
        "TMPDIR": str(tmp_path),  # a page's `mktemp -d` is removed with the test's own files
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SMP_LOG_LEVEL": "error",
        "COLUMNS": "120",
    }
    for command in commands(page):
        status, out, err = shell.run(command, ROOT, env)  # smp in-process, the rest in bash
        assert status == 0, (f"{page.name}: `{command}` exited {status}\n{out[-2000:]}"
                             f"\n{err[-2000:]}")


def test_state_diagram_page_is_generated_from_the_machine():
    text = (ROOT / "docs" / "state-diagram.md").read_text()
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == state_diagram_mermaid()


def _all_commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        path = (*prefix, name)
        yield path, command
        if isinstance(command, click.Group):
            yield from _all_commands(command, path)


def test_every_command_help_teaches_with_an_example():
    from click.testing import CliRunner

    from smpdevice.cli import main

    paths = [path for path, _ in _all_commands(main)]
    assert len(paths) >= 15
    for path in paths:
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "example" in result.output.lower(), f"`smp {' '.join(path)} --help` has no example"
