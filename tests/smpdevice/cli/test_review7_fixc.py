"""Review 7A, the command line (FIXC7): an export never writes over a record (R07), --session
is one session (R01), a full disk never prints tracebacks (R02), `smp run` says which envelope
it is held to (R03), a refused --db file is left as it was (R05), a port in use is named (R06).

Real `smp` commands (in-process through click, or a real process where the process's own
limits are the point) against real SQLite files and the built-in simulator.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.paths import SQLITE_HEADER, NotADatabaseError, require_database
from tests.smpdevice.cli.test_cli_run import SCREENING, calibrate_default_pen, short_profile
from tests.smpdevice.records.test_passlog import filled

ROOT = Path(__file__).resolve().parents[3]
ENVELOPE = ROOT / "examples" / "clinic_envelope.yaml"


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SMP_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("SMP_LOG_LEVEL", "error")
    data.mkdir(mode=0o700)
    return data


def _two_sessions(data_dir: Path) -> tuple[Path, list[str]]:
    log = data_dir / "passlog.sqlite"
    ids = sorted([filled(log)[0], filled(log)[0]])  # both ids begin with "S"
    return log, ids


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), stat.S_IMODE(path.stat().st_mode)


# ------------------------------------------------ R07: no output over a record


def test_export_onto_the_pass_log_is_refused_every_way_it_is_named(data_dir, tmp_path,
                                                                    monkeypatch):
    log, _ = _two_sessions(data_dir)
    (data_dir / "calibrations.sqlite").write_bytes(SQLITE_HEADER + b"\0" * 100)
    anchors = data_dir / "passlog.anchors.jsonl"  # the receipts of the signed heads
    assert anchors.is_file()
    symlink, hardlink = tmp_path / "out.csv", tmp_path / "hard.csv"
    symlink.symlink_to(log)
    os.link(log, hardlink)
    before = {p: _snapshot(p) for p in (log, data_dir / "calibrations.sqlite", anchors)}
    monkeypatch.chdir(data_dir)
    for output in (str(log), "passlog.sqlite", "./passlog.sqlite", f"{data_dir}/../data/"
                   "passlog.sqlite", str(symlink), str(hardlink), "calibrations.sqlite",
                   str(anchors), "passlog.sqlite-wal", "passlog-SMP-NEW.sqlite"):
        result = smp("sessions", "export", "--format", "csv", "-o", output)
        assert result.exit_code == 2, (output, result.output)
        assert "--output" in result.output and "nothing was written" in result.output, output
        assert "Traceback" not in result.output
    assert {p: _snapshot(p) for p in before} == before
    assert not (data_dir / "passlog.sqlite-wal").exists()
    assert not (data_dir / "passlog-SMP-NEW.sqlite").exists()
    assert smp("sessions", "verify").exit_code == 0


def test_export_onto_any_sqlite_database_or_the_key_is_refused(data_dir, tmp_path):
    _two_sessions(data_dir)
    other = tmp_path / "backup.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    key = tmp_path / "keys" / "installation-ed25519.pem"  # made by the log's first writer
    assert key.is_file()
    for target, why in ((other, "SQLite database"), (key, "installation key")):
        before = _snapshot(target)
        result = smp("sessions", "export", "--format", "jsonl", "-o", str(target))
        assert result.exit_code == 2 and why in result.output, result.output
        assert _snapshot(target) == before


def test_export_to_an_ordinary_file_still_works(data_dir, tmp_path):
    _two_sessions(data_dir)
    out = tmp_path / "passes.csv"
    out.write_text("an older export\n")
    result = smp("sessions", "export", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().count("\n") == 1 + 6  # a header and three passes per session
    assert "exported 6 passes" in result.output


def test_c_codec_never_writes_through_a_link_to_a_record(data_dir, tmp_path):
    log, _ = _two_sessions(data_dir)
    before = _snapshot(log)
    out = tmp_path / "codec"
    out.mkdir()
    (out / "smp_protocol.c").symlink_to(log)
    result = smp("protocol", "c-codec", "--out", str(out), "--force")
    assert result.exit_code == 2 and "pass log" in result.output, result.output
    assert _snapshot(log) == before and not (out / "smp_protocol.h").exists()


# ------------------------------------------------ R01: --session is one session


def test_export_and_list_refuse_an_ambiguous_prefix_naming_the_sessions(data_dir):
    _, ids = _two_sessions(data_dir)
    for command in (["sessions", "export", "--format", "jsonl"], ["sessions", "list"]):
        result = smp(*command, "--session", "S")
        assert result.exit_code == 2, result.output
        assert all(sid in result.output for sid in ids), result.output


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_or_blank_session_is_a_usage_error(data_dir, blank):
    _two_sessions(data_dir)
    for command in (["sessions", "export", "--format", "jsonl"], ["sessions", "list"]):
        result = smp(*command, "--session", blank)
        assert result.exit_code == 2 and "--session" in result.output, result.output
        assert "is not a session id" in result.output


def test_a_unique_prefix_exports_and_lists_that_session_only(data_dir):
    _, ids = _two_sessions(data_dir)
    prefix = next(sid[:n] for n in range(2, 18) for sid in ids
                  if not any(o.startswith(sid[:n]) for o in ids if o != sid))
    chosen = next(sid for sid in ids if sid.startswith(prefix))
    exported = smp("sessions", "export", "--format", "jsonl", "--session", prefix)
    assert exported.exit_code == 0, exported.output
    assert {json.loads(line)["session_id"] for line in exported.stdout.splitlines()} == {chosen}
    listed = smp("sessions", "list", "--json", "--session", prefix)
    assert [s["session_id"] for s in json.loads(listed.stdout)] == [chosen]


def test_an_unknown_session_says_so(data_dir):
    _two_sessions(data_dir)
    result = smp("sessions", "export", "--format", "csv", "--session", "Sffffffffffffffff0")
    assert result.exit_code == 2 and "no session" in result.output, result.output


# ------------------------------------------------ R05: a refused --db file is left alone


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "notes.txt"
    victim.write_text("my notes\n")
    victim.chmod(0o644)
    return victim


def _untouched(victim: Path) -> None:
    assert _snapshot(victim) == (b"my notes\n", 0o644)
    assert not victim.with_name(victim.name + ".lock").exists()


@pytest.mark.parametrize("option", ["--db", "--calibrations"])
def test_run_refuses_a_file_that_is_no_database_without_touching_it(data_dir, tmp_path,
                                                                    option, sim_virtual_time):
    calibrate_default_pen(data_dir)
    victim = _victim(tmp_path)
    result = smp("run", str(short_profile(tmp_path)), "--port", "pensim://", "-t", "ana",
                 "--screening", str(SCREENING), option, str(victim))
    assert result.exit_code == 2, result.output
    assert str(victim) in result.output and "nothing was changed" in result.output
    _untouched(victim)


def test_calibrate_refuses_a_file_that_is_no_database_without_touching_it(data_dir, tmp_path):
    victim = _victim(tmp_path)
    result = smp("calibrate", "--port", "pensim://", "--auto", "--db", str(victim))
    assert result.exit_code == 2 and "not a calibration database" in result.output
    _untouched(victim)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=64).filter(
    lambda b: not b.startswith(SQLITE_HEADER)))
def test_no_file_but_a_database_passes_require_database(tmp_path, content):
    path = tmp_path / "file"
    path.write_bytes(content)
    with pytest.raises(NotADatabaseError, match="nothing was changed"):
        require_database(path, "a pass log")
    assert path.read_bytes() == content


def test_an_empty_or_missing_file_is_a_new_database(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    assert require_database(tmp_path / "empty", "a pass log") == tmp_path / "empty"
    assert require_database(tmp_path / "missing", "a pass log") == tmp_path / "missing"


# ------------------------------------------------ R03: `smp run` names its envelope


def test_run_says_which_envelope_it_is_checked_against(data_dir, tmp_path, sim_virtual_time):
    calibrate_default_pen(data_dir)
    args = ["run", str(short_profile(tmp_path)), "--port", "pensim://", "-t", "ana",
            "--screening", str(SCREENING)]
    given_file = smp(*args, "--envelope", str(ENVELOPE))
    assert given_file.exit_code == 0, given_file.output
    assert f"checked against the envelope {ENVELOPE} (from the option)" in given_file.output
    built_in = smp(*args)
    assert built_in.exit_code == 0, built_in.output
    assert "checked against the built-in envelope" in built_in.output


def test_resume_says_which_envelope_it_is_checked_against(data_dir, tmp_path):
    _, ids = _two_sessions(data_dir)
    result = smp("run", "--resume", ids[0], "--close", "--port", "pensim://",
                 "--envelope", str(ENVELOPE), "-t", "ana")
    # a closed session: refused, so no envelope is named (said once the resume's checks pass;
    # a resume that passes them names ENVELOPE: test_cli_resume_envelope_line.py)
    assert result.exit_code == 2 and "checked against" not in result.stdout, result.output


# ------------------------------------------------ R06: a port in use is named


def test_sim_names_the_option_and_the_port_in_use(data_dir):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        pen = smp("sim", "--tcp", str(port))
        gauge = smp("sim", "--tcp", "0", "--gauge-port", str(port))
    assert pen.exit_code == 2 and "--tcp" in pen.output and f"port {port} is in use" in pen.output
    assert gauge.exit_code == 2 and "--gauge-port" in gauge.output
    for result in (pen, gauge):
        assert "Free space" not in result.output, result.output
    both = smp("sim", "--tcp", str(port), "--gauge-port", str(port))
    assert both.exit_code == 2 and "--gauge-port" in both.output and "by --tcp" in both.output


# ------------------------------------------------ R02: a full disk under smp.log


LIMIT = 256 * 1024  # bytes any file may reach in the child: smp.log is already past it


# The child limits itself (no preexec_fn in a threaded test process); Python ignores SIGXFSZ.
LIMITED = ("import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_FSIZE, "
           f"({LIMIT}, {LIMIT})); sys.argv[0] = 'smp'; runpy.run_module('smpdevice', "
           "run_name='__main__')")


def _full_disk_smp(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`smp ARGS` where a write past LIMIT fails with EFBIG, as ENOSPC on a full disk."""
    log = data_dir / "smp.log"
    log.write_text('{"x": 1}\n' * (LIMIT // 9 + 1))
    log.chmod(0o600)
    # PYTHONDONTWRITEBYTECODE: a .pyc cut at LIMIT would be left in the shared byte-code
    # cache, and every later process importing that module would fail on it (EOFError).
    env = dict(os.environ, SMP_SIM_CLOCK="virtual", SMP_LOG_LEVEL="warning",
               PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", LIMITED, *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)


def test_a_detail_log_on_a_full_disk_is_one_line_and_the_command_goes_on(data_dir):
    result = _full_disk_smp(data_dir, "info", "--port", "pensim://")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    assert result.stderr.count("the detail log") == 1, result.stderr
    assert "cannot be written" in result.stderr and "Pen SMP-" in result.stdout


def test_a_run_on_a_full_disk_detail_log_ends_as_it_would_without(data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    result = _full_disk_smp(data_dir, "run", str(short_profile(tmp_path)), "--port",
                            "pensim://?faults=jam@0.2", "-t", "ana", "--screening",
                            str(SCREENING))
    assert result.returncode == 4, result.stderr[-2000:]  # the jam
    assert "Traceback" not in result.stderr, result.stderr[:2000]
    assert result.stderr.count("the detail log") == 1, result.stderr

