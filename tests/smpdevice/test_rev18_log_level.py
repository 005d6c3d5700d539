"""Review 18: `smpdevice.logs.configure(level)` takes debug, info, warning or error (any case),
from its argument or SMP_LOG_LEVEL; anything else (an attribute of `logging` such as
`basic_format`, a typo, a number) is refused with InvalidArgument (exit 2), never a KeyError
at the next log line nor a silent warning level."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest
import structlog

from smpdevice.checks import InvalidArgument
from smpdevice.logs import configure, ensure_configured, terminal_level_of

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "session_software.py"


@pytest.mark.parametrize("level", ["basic_format", "bogus", "WARN", "critical", 10, b"info"])
def test_configure_refuses_a_name_that_is_no_level(level, monkeypatch):
    monkeypatch.delenv("SMP_LOG_LEVEL", raising=False)
    with pytest.raises(InvalidArgument, match="is not a log level; allowed: debug, info"):
        configure(level)


@pytest.mark.parametrize("level, expected", [("DEBUG", logging.DEBUG), ("Info", logging.INFO),
                                             ("warning", logging.WARNING),
                                             ("error", logging.ERROR), (None, logging.WARNING)])
def test_the_four_levels_are_taken_in_any_case(level, expected, monkeypatch):
    monkeypatch.delenv("SMP_LOG_LEVEL", raising=False)
    assert terminal_level_of(level) == expected
    configure(level)
    structlog.get_logger("t").error("a line")  # no KeyError at the next log line


def test_a_bad_environment_level_is_named_and_the_library_still_logs(monkeypatch, capsys):
    monkeypatch.setenv("SMP_LOG_LEVEL", "basic_format")
    with pytest.raises(InvalidArgument, match="SMP_LOG_LEVEL='basic_format'"):
        configure()
    structlog.reset_defaults()
    ensure_configured()  # a library user's program: not stopped by it, told once
    assert "SMP_LOG_LEVEL" in capsys.readouterr().err


def test_the_example_exits_2_on_a_bad_log_level(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    spec = importlib.util.spec_from_file_location("session_software_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with pytest.raises(InvalidArgument) as caught:
        example.main(["--simulator", "--quick", "--log-level", "basic_format"])
    assert caught.value.exit_code == 2
