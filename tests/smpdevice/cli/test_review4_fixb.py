"""Review 4 (FIXB), command line: the station envelope in every check, technician names,
directories given as database files, damaged and emptied anchors files. Each test failed on the
code before the fix (a wrong exit, a re-moded directory, or a traceback: catch_exceptions=False)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.keys import InstallationKey
from smpdevice.records.signing import anchors_path
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats

ROOT = Path(__file__).resolve().parents[3]
PROFILE = str(ROOT / "examples" / "session1_base_density.yaml")  # top zone: depth 0.40 mm
SCREENING = str(ROOT / "examples" / "screening_clear.yaml")


def smp(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# --- finding 3: `smp profile check` and `smp envelope show` use the station's envelope --------


@pytest.fixture
def station(tmp_path, monkeypatch) -> Path:
    """A station config whose envelope lowers top's ceiling below the example's 0.40 mm."""
    envelope = tmp_path / "env.yaml"
    envelope.write_text("top:\n  dermal_ceiling_mm: 0.30\n")
    config = tmp_path / "config.toml"
    config.write_text('envelope = "env.yaml"\n')
    monkeypatch.setenv("SMP_CONFIG", str(config))
    return envelope


def test_profile_check_refuses_what_the_station_envelope_refuses(station):
    result = smp("profile", "check", PROFILE)
    assert result.exit_code == 1
    assert "dermal ceiling 0.3 mm" in result.stderr and str(station) in result.stderr
    as_json = json.loads(smp("profile", "check", PROFILE, "--json").stdout)
    assert as_json["ok"] is False and as_json["envelope"]["file"] == str(station)


def test_profile_check_follows_smp_envelope_and_the_option_wins(station, tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SMP_ENVELOPE", str(station))
    assert smp("profile", "check", PROFILE).exit_code == 1
    wide = tmp_path / "wide.yaml"
    wide.write_text("top:\n  dermal_ceiling_mm: 0.5\n")
    ok = smp("profile", "check", PROFILE, "--envelope", str(wide))  # option > environment
    assert ok.exit_code == 0 and f"checked against the envelope {wide}" in ok.stdout


def test_envelope_show_prints_the_station_envelope_in_force(station):
    shown = json.loads(smp("envelope", "show").stdout)
    named = json.loads(smp("envelope", "show", "--file", str(station)).stdout)
    assert shown["sha256"] == named["sha256"]
    assert shown["zones"]["top"]["dermal_ceiling_mm"] == 0.30
    assert shown["file"] == str(station) and shown["source"].startswith("config file")


def test_without_a_station_envelope_the_built_in_one_is_named():
    result = smp("profile", "check", PROFILE)
    assert result.exit_code == 0 and "the built-in envelope" in result.stdout
    assert json.loads(smp("envelope", "show").stdout)["source"] == "default"


# --- finding 4: the technician of a session is checked as a name, before anything opens ------


@pytest.mark.parametrize("name", ["ana\tb", "ana\u202eevil", "a" * 201])
def test_run_refuses_a_technician_that_is_not_a_name(name, tmp_path):
    db = tmp_path / "p.sqlite"
    result = smp("run", PROFILE, "--port", "pensim://", "-t", name, "--screening", SCREENING,
                 "--db", str(db))
    assert result.exit_code == 2, result.output
    assert "--technician=" in result.stderr and "is refused" in result.stderr
    assert not db.exists(), "refused before the pass log was opened"


def test_the_technician_setting_is_checked_in_the_config_and_the_environment(tmp_path,
                                                                             monkeypatch):
    config = tmp_path / "config.toml"
    config.write_text('technician = "ana\\tb"\n')
    monkeypatch.setenv("SMP_CONFIG", str(config))
    checked = smp("config", "check")
    assert checked.exit_code == 1 and "U+0009" in checked.output
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SMP_TECHNICIAN", "ana\u202eevil")
    refused = smp("run", PROFILE, "--port", "pensim://", "--screening", SCREENING)
    assert refused.exit_code == 1 and "SMP_TECHNICIAN" in refused.stderr


# --- finding 6: a directory given as --db / --calibrations is refused, its mode untouched ----


@pytest.fixture
def user_dir(tmp_path) -> Path:
    d = tmp_path / "d"
    d.mkdir()
    d.chmod(0o755)
    (d / "notes.txt").write_text("mine")
    return d


@pytest.mark.parametrize("args", [
    ["run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING, "--db", "{d}"],
    ["run", PROFILE, "--port", "pensim://", "-t", "ana", "--screening", SCREENING,
     "--calibrations", "{d}"],
    ["calibrate", "--port", "pensim://", "--auto", "--db", "{d}"],
    ["calibrations", "list", "--db", "{d}"],
])
def test_a_directory_given_as_a_database_is_refused_and_not_re_moded(args, user_dir):
    result = smp(*(a.replace("{d}", str(user_dir)) for a in args))
    assert result.exit_code == 2, result.output
    assert f"{user_dir} is a directory, not a file" in result.stderr
    assert stat.S_IMODE(user_dir.stat().st_mode) == 0o755
    assert (user_dir / "notes.txt").read_text() == "mine"


# --- finding 7 and the emptied anchors file: `smp sessions verify` --------------------------


@pytest.fixture
def closed_log(tmp_path) -> Path:
    db = tmp_path / "passlog.sqlite"
    with PassLog(db, key=InstallationKey.load_or_create()) as log:
        for _ in range(2):
            sid = open_session(log)
            log.end_pass(begin(log, sid), outcome="completed", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0, summary={})
    return db


@pytest.mark.parametrize("damage", [b"\x93garbage\n", b"[" * 100_000 + b"\n"])
def test_verify_names_a_damaged_anchors_line_in_one_line(closed_log, damage):
    with anchors_path(closed_log).open("ab") as handle:
        handle.write(damage)
    result = smp("sessions", "verify", "--db", str(closed_log))
    assert result.exit_code == 2
    assert "line 3 of the anchors file" in result.stderr and "restore" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_refuses_a_device_given_as_anchors(closed_log):
    # /dev/null stands for every device (/dev/zero would fill the memory of a regression)
    result = smp("sessions", "verify", "--db", str(closed_log), "--anchors", "/dev/null")
    assert result.exit_code == 2 and "not a regular file" in result.stderr


def test_verify_refuses_an_emptied_anchors_file_and_a_cut_backup(closed_log, tmp_path):
    path = anchors_path(closed_log)
    lines = path.read_text().splitlines(keepends=True)
    assert smp("sessions", "verify", "--db", str(closed_log)).exit_code == 0
    path.write_text("")
    emptied = smp("sessions", "verify", "--db", str(closed_log))
    assert emptied.exit_code == 1 and "not in the anchors file" in emptied.stdout
    backup = tmp_path / "backup.anchors.jsonl"
    backup.write_text(lines[0])
    cut = smp("sessions", "verify", "--db", str(closed_log), "--anchors", str(backup))
    assert cut.exit_code == 1 and "1 of 2 closes missing" in cut.stdout
    backup.write_text("".join(lines))
    assert smp("sessions", "verify", "--db", str(closed_log), "--anchors",
               str(backup)).exit_code == 0
    assert smp("sessions", "verify", "--db", str(closed_log), "--no-anchors").exit_code == 0


def test_verify_against_an_empty_url_is_refused_not_ignored(closed_log):
    result = smp("sessions", "verify", "--db", str(closed_log), "--against", "")
    assert result.exit_code == 2 and "--against" in result.output
