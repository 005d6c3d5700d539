"""`smp profile` and `smp sessions`: output for people, exit codes for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from smpdevice.cli import main
from tests.smpdevice.records.test_passlog import filled

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "session1_base_density.yaml"


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_profile_check_ok():
    result = run("profile", "check", str(EXAMPLE))
    assert result.exit_code == 0
    assert "ok: " in result.output and "(base_density, 3 zones, 4 planned passes)" in result.output
    assert "profile hash: " in result.output


def test_profile_check_prints_every_error_one_per_line(tmp_path):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["zones"]["top"]["depth_mm"] = 0.9
    data["zones"]["crown"]["needle"] = "7RL 0.25mm"
    data["client_ref"] = "John Smith"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run("profile", "check", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""  # errors go to stderr, results to stdout
    assert result.stderr.splitlines()[0] == f"{path}: 3 errors"
    lines = [line for line in result.stderr.splitlines()[1:] if line.startswith(f"{path}: ")]
    assert len(lines) == 3
    assert any("zones.top.depth_mm = 0.9: is deeper than the dermal ceiling" in x for x in lines)
    assert any("zones.crown.needle = '7RL 0.25mm'" in x for x in lines)
    assert any("client_ref = 'John Smith'" in x for x in lines)


def test_profile_check_json(tmp_path):
    path = tmp_path / "bad.json"
    data = yaml.safe_load(EXAMPLE.read_text())
    data["zones"]["top"]["speed_hz"] = 140
    path.write_text(json.dumps(data))
    result = run("profile", "check", str(path), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["errors"] == [{"path": "zones.top.speed_hz", "value": 140.0,
                                 "rule": "is above the maximum 130 Hz of zone 'top'"}]
    ok = json.loads(run("profile", "check", str(EXAMPLE), "--json").stdout)
    assert ok["ok"] is True and len(ok["profile_hash"]) == 64


def test_profile_check_with_an_envelope_file(tmp_path):
    envelope = tmp_path / "envelope.yaml"
    envelope.write_text("top: {dermal_ceiling_mm: 0.35}\n")
    result = run("profile", "check", str(EXAMPLE), "--envelope", str(envelope))
    assert result.exit_code == 1
    assert "zones.top.depth_mm = 0.4: is deeper than the dermal ceiling 0.35 mm" in result.output


def test_profile_check_missing_file(tmp_path):
    result = run("profile", "check", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "nope.yaml: no such file; check the path" in result.stderr


def test_profile_schema():
    result = run("profile", "schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "SMP treatment profile"


@pytest.mark.parametrize("args", [["profile"], ["profile", "check"], ["profile", "schema"],
                                  ["sessions"], ["sessions", "list"], ["sessions", "show"],
                                  ["sessions", "export"], ["sessions", "verify"]])
def test_every_help_teaches_with_an_example(args):
    result = run(*args, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "smp " in result.output


def test_sessions_list_show_and_verify(tmp_path):
    db = tmp_path / "log.sqlite"
    sid, ids = filled(db)
    listed = run("sessions", "list", "--db", str(db))
    assert listed.exit_code == 0
    assert sid in listed.output and "C-0042" in listed.output and "1 sessions" in listed.output
    shown = run("sessions", "show", sid[:5], "--db", str(db))
    assert shown.exit_code == 0
    assert "3 passes" in shown.output and "fault 33 jam,overcurrent" in shown.output
    assert "0.380/0.410/0.450" in shown.output
    as_json = json.loads(run("sessions", "show", sid, "--db", str(db), "--json").stdout)
    assert [p["pass_id"] for p in as_json["passes"]] == ids
    verified = run("sessions", "verify", "--db", str(db))
    assert verified.exit_code == 0 and "ok: 8 records, chain intact" in verified.output


def test_sessions_uses_smp_data_dir(tmp_path):
    filled(tmp_path / "passlog.sqlite")
    result = run("sessions", "list", env={"SMP_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0 and "1 sessions" in result.output


def test_sessions_verify_names_the_first_broken_link(tmp_path):
    import sqlite3

    db = tmp_path / "log.sqlite"
    filled(db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE records SET body = replace(body, 'tech-1', 'tech-2') WHERE seq = 1")
    result = run("sessions", "verify", "--db", str(db))
    assert result.exit_code == 1
    assert "broken link: record 1: (session_open of session" in result.output
    assert "was altered" in result.output


def test_sessions_export_to_a_file_and_stdout(tmp_path):
    db = tmp_path / "log.sqlite"
    filled(db)
    out = tmp_path / "passes.csv"
    result = run("sessions", "export", "--format", "csv", "--output", str(out), "--db", str(db))
    assert result.exit_code == 0
    assert out.read_text().count("\n") == 4
    jsonl = run("sessions", "export", "--format", "jsonl", "--db", str(db))
    assert [json.loads(x)["outcome"] for x in jsonl.stdout.splitlines()] == [
        "completed", "fault", "estop"]


def test_sessions_errors_are_one_line_and_non_zero(tmp_path):
    missing = run("sessions", "list", "--db", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 3 and "no pass log at" in missing.output
    db = tmp_path / "log.sqlite"
    filled(db)
    unknown = run("sessions", "show", "Snope", "--db", str(db))
    assert unknown.exit_code == 2 and "no session 'Snope'" in unknown.output
    assert "Traceback" not in unknown.output
