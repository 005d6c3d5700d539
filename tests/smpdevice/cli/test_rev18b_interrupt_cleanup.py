"""Review 18c (6): `entry.holds_interrupt` followed the whole __context__ chain, so a real bug
raised in a command's `except KeyboardInterrupt:` clean-up (a failed stop) printed
"interrupted" and exited 130 with no traceback. Now only a KeyboardInterrupt given as the
__cause__ (Python 3.11's `__set_name__` wrapper) is a Ctrl-C in disguise."""

from __future__ import annotations

import click
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.entry import holds_interrupt


def test_a_bug_in_ctrl_c_clean_up_is_not_reported_as_interrupted():
    @click.group(cls=type(main))
    def group() -> None:
        pass

    @group.command()
    def work() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            {}["clean-up"]  # a bug in the clean-up after Ctrl-C: a KeyError, not a Ctrl-C

    @group.command()
    def wrapped() -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ctrl_c:  # as Python 3.11 wraps one in __set_name__
            raise RuntimeError("Error calling __set_name__") from ctrl_c

    result = CliRunner().invoke(group, ["work"])
    assert result.exit_code != 130 and isinstance(result.exception, KeyError), (
        result.exit_code, result.output)
    result = CliRunner().invoke(group, ["wrapped"])
    assert result.exit_code == 130 and "interrupted" in result.output, result.output


def test_only_a_cause_is_an_interrupt():
    error = ValueError("in clean-up")
    error.__context__ = KeyboardInterrupt()
    assert holds_interrupt(error) is False
    error.__cause__ = KeyboardInterrupt()
    assert holds_interrupt(error) is True
