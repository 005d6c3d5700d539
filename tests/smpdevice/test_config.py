"""The station config file: strict, shown, and below options and the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.config import (
    MAX_CONFIG_BYTES,
    SETTINGS,
    ConfigError,
    config_path,
    load_config,
    setting,
)
from smpdevice.paths import data_dir
from tests.smpdevice.shell import smp as smp_here


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    path = tmp_path / "station" / "config.toml"
    path.parent.mkdir()
    monkeypatch.setenv("SMP_CONFIG", str(path))
    for _name, (env, _, _) in SETTINGS.items():
        monkeypatch.delenv(env, raising=False)
    return path


def test_the_path_is_per_user_unless_smp_config_says(tmp_path, monkeypatch):
    monkeypatch.delenv("SMP_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_path() == tmp_path / "smpdevice" / "config.toml"
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "x.toml"))
    assert config_path() == tmp_path / "x.toml"


def test_precedence_option_then_environment_then_file_then_default(cfg, monkeypatch):
    cfg.write_text('port = "/dev/ttyFILE"\nfootswitch = "required"\nlog_level = "info"\n')
    assert setting("port").value == "/dev/ttyFILE"
    assert setting("port").source.startswith("config file")
    monkeypatch.setenv("SMP_PORT", "/dev/ttyENV")
    assert setting("port").value == "/dev/ttyENV"
    assert setting("port", "/dev/ttyOPT").value == "/dev/ttyOPT"
    assert setting("port", "/dev/ttyOPT").source == "option"
    assert setting("footswitch").value == "required"
    assert setting("technician").value is None and setting("technician").source == "default"
    cfg.unlink()
    monkeypatch.delenv("SMP_PORT")
    assert setting("port").value is None
    assert setting("footswitch").value == "optional"
    assert setting("log_level").value == "warning"


def test_data_dir_follows_the_same_precedence(cfg, tmp_path, monkeypatch):
    cfg.write_text('data_dir = "from-file"\n')  # relative: to the config file's folder
    assert data_dir() == cfg.parent / "from-file"
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "from-env"))
    assert data_dir() == tmp_path / "from-env"


@pytest.mark.parametrize("text, expected", [
    ('prot = "/dev/ttyACM0"\n', "unknown key 'prot'"),
    ("port = 3\n", "port must be a string, got an integer"),
    ("port = true\n", "port must be a string, got a boolean"),
    ('port = ""\n', "port must not be empty"),
    ("[port]\nx = 1\n", "port must be a string, got a table"),
    ('footswitch = "maybe"\n', "footswitch must be one of required, optional, off"),
    ('log_level = "bogus"\n', "log_level must be one of debug, info, warning, error"),
    ('port = "a"\nport = "b"\n', "'port' appears twice in one mapping on lines 1 and 2"),
    ("port = \n", "not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_issue(cfg, text, expected):
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert any(expected in issue for issue in err.value.issues), err.value.issues
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1
    assert expected in result.stderr and result.stdout == ""
    assert "Traceback" not in result.output


def test_every_issue_is_one_line(cfg):
    cfg.write_text('prot = 1\nport = 3\nfootswitch = "x"\ntechnician = ["a"]\n')
    result = CliRunner().invoke(main, ["config", "check"])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith(f"{cfg}: ") for line in lines)


def test_an_oversized_or_binary_file_is_refused(cfg):
    cfg.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match="above the cap"):
        load_config()
    cfg.write_bytes(b"port = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config()


def test_a_hostile_config_is_refused_clearly_and_never_hangs(cfg):
    """Read by the one strict loader: deep nesting is no RecursionError, a FIFO no hang."""
    cfg.write_text("port = " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(ConfigError):
        load_config()
    cfg.unlink()
    os.mkfifo(cfg)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config()
    # In this process (shell.py): load_config() above already read the FIFO here unblocked.
    result = smp_here(["sessions", "list"], input="")
    assert result.returncode != 0 and "not a regular file" in result.stderr
    assert "Traceback" not in result.stderr


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.text(min_size=1, max_size=12),
                       st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False),
                                 st.text(max_size=20)), max_size=6))
def test_any_toml_table_is_either_accepted_exactly_or_refused_with_a_config_error(cfg, data):
    lines = [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in data.items()
             if not (isinstance(v, float) and v in (float("inf"), float("-inf")))]
    cfg.write_text("\n".join(lines) + "\n")
    try:
        values = load_config()
    except ConfigError as exc:
        assert exc.issues
        return
    assert set(values) <= set(SETTINGS)
    assert all(isinstance(v, str) and v.strip() for v in values.values())


def test_a_bad_environment_variable_is_refused(cfg, monkeypatch):
    monkeypatch.setenv("SMP_FOOTSWITCH", "sometimes")
    with pytest.raises(ConfigError, match="SMP_FOOTSWITCH is not valid"):
        setting("footswitch")
    monkeypatch.setenv("SMP_LOG_LEVEL", "bogus")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code != 0 and "SMP_LOG_LEVEL is not valid" in result.output


def test_log_level_bogus_is_refused(cfg):
    result = CliRunner().invoke(main, ["--log-level", "bogus", "config", "show"])
    assert result.exit_code == 2 and "bogus" in result.output
    assert CliRunner().invoke(main, ["--log-level", "DEBUG", "config", "show"]).exit_code == 0


def test_config_show_says_where_each_setting_comes_from(cfg, monkeypatch):
    cfg.write_text('port = "/dev/ttyFILE"\ntechnician = "ana"\n')
    monkeypatch.setenv("SMP_TECHNICIAN", "ben")
    result = CliRunner().invoke(main, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {r["setting"]: r for r in data["settings"]}
    assert data["path"] == str(cfg) and data["exists"] is True
    assert rows["port"]["value"] == "/dev/ttyFILE" and "config file" in rows["port"]["source"]
    assert rows["technician"]["value"] == "ben"
    assert rows["technician"]["source"] == "environment SMP_TECHNICIAN"
    assert rows["footswitch"] == {**rows["footswitch"], "value": "optional", "source": "default"}
    text = CliRunner().invoke(main, ["config", "show"]).stdout
    assert str(cfg) in text and "/dev/ttyFILE" in text


def test_config_check_accepts_a_good_file_and_names_its_settings(cfg):
    cfg.write_text('port = "pensim://"\ntechnician = "ana"\nfootswitch = "OFF"\n')
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"ok: {cfg}")
    assert "port, technician, footswitch" in result.stdout
    assert setting("footswitch").value == "off"


def test_config_check_reads_the_envelope_it_names(cfg):
    cfg.write_text('envelope = "missing.yaml"\n')
    result = CliRunner().invoke(main, ["config", "check"])
    assert result.exit_code == 1 and "envelope: no such file" in result.stderr


def test_the_config_port_is_the_port_smp_run_uses(cfg, tmp_path):
    cfg.write_text('port = "/dev/ttyNOPE_FROM_CONFIG"\ntechnician = "ana"\n')
    profile = Path(__file__).resolve().parents[2] / "examples" / "session1_base_density.yaml"
    screening = profile.parent / "screening_clear.yaml"
    result = CliRunner().invoke(main, ["run", str(profile), "--screening", str(screening)],
                                env={"SMP_DATA_DIR": str(tmp_path / "data")})
    assert result.exit_code == 2
    assert "/dev/ttyNOPE_FROM_CONFIG" in result.output  # tried the configured port, not a sim


def test_shell_completion_is_clicks_own(tmp_path):
    env = {**os.environ, "_SMP_COMPLETE": "bash_source"}
    smp = Path(sys.executable).parent / "smp"
    out = subprocess.run([str(smp)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "_smp_completion" in out.stdout
    env = {**os.environ, "_SMP_COMPLETE": "bash_complete", "COMP_WORDS": "smp con",
           "COMP_CWORD": "1"}
    out = subprocess.run([str(smp)], env=env, capture_output=True, text=True, timeout=60)
    assert "config" in out.stdout
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for shell in ("bash", "zsh", "fish"):
        assert f"_SMP_COMPLETE={shell}_source smp" in readme
