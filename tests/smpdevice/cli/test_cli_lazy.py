"""`smp --help` imports no command module; each command loads when used (issue 13: start-up)."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from smpdevice.cli import COMMANDS, LOG_LEVELS, load_command, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_summary_is_the_commands_own_help(name):
    command = load_command(name)
    assert command.name == name
    for limit in (30, 45, 60, 120):
        summary = click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)
        assert summary == command.get_short_help_str(limit), \
            f"update COMMANDS[{name!r}] in smpdevice/cli"


def test_the_log_levels_are_the_configs():
    from smpdevice.config import LOG_LEVELS as CONFIG_LEVELS

    assert LOG_LEVELS == CONFIG_LEVELS


def test_help_lists_every_command_and_imports_none_of_them():
    code = (
        "import sys\n"
        "from smpdevice.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('smpdevice.cli.',\n"
        "    'smpdevice.control', 'smpdevice.service', 'smpdevice.records', 'serial',\n"
        "    'structlog', 'rich', 'pydantic', 'transitions')) and m != 'smpdevice.cli.interrupt')\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out
    for name in COMMANDS:
        assert f"\n  {name} " in out


def test_a_command_is_found_and_loaded_on_use():
    ctx = click.Context(main)
    assert set(main.list_commands(ctx)) == set(COMMANDS)
    assert main.get_command(ctx, "protocol").name == "protocol"
    assert main.get_command(ctx, "no-such-command") is None
    assert "run" in main.commands and main.commands["run"].name == "run"
