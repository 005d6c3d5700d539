"""REV3B-2/3: `smp config show` reports the log level typed on the command line; a user with
no home directory but SMP_DATA_DIR and SMP_KEY_DIR set has no config file, which is no error."""

from __future__ import annotations

import json
import pathlib

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.config import SETTINGS


@pytest.fixture
def clean(tmp_path, monkeypatch):
    for _name, (env, _, _) in SETTINGS.items():
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    return tmp_path


def test_config_show_reports_the_log_level_option(clean, monkeypatch):
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")  # the option is above the environment
    result = CliRunner().invoke(main, ["--log-level", "debug", "config", "show"])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("log_level"))
    assert line.split()[1:4] == ["debug", "option", "--log-level"], line
    rows = json.loads(CliRunner().invoke(main, ["--log-level", "info", "config", "show",
                                                "--json"]).stdout)["settings"]
    level = next(r for r in rows if r["setting"] == "log_level")
    assert (level["value"], level["source"]) == ("info", "option --log-level")
    plain = json.loads(CliRunner().invoke(main, ["config", "show", "--json"]).stdout)
    level = next(r for r in plain["settings"] if r["setting"] == "log_level")
    assert (level["value"], level["source"]) == ("error", "environment SMP_LOG_LEVEL")


@pytest.mark.parametrize("sub", ["show", "check"])
def test_no_home_with_data_and_key_dirs_set_is_no_error(clean, monkeypatch, sub):
    def no_home(cls=None):  # what Path.home() raises for a uid without a passwd entry
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("SMP_CONFIG")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pathlib.Path, "home", classmethod(no_home))
    result = CliRunner().invoke(main, ["config", sub])
    assert result.exit_code == 0, result.output
    assert "this user has no home directory; set SMP_CONFIG" in result.stdout
    assert "SMP_DATA_DIR and SMP_KEY_DIR" not in result.output
    if sub == "show":
        as_json = json.loads(CliRunner().invoke(main, ["config", "show", "--json"]).stdout)
        assert as_json["path"] is None and as_json["exists"] is False
