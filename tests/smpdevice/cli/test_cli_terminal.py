"""The technician's terminal stays readable (issue 16, item 2): frame dumps go to the detail
log (0600, rotated) and the terminal gets one line saying where they are; numbers never wrap
away from their units; errors go to stderr and results to stdout, for every command."""

from __future__ import annotations

import itertools
import json
import re
import stat
import traceback
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from simulators import PenSimulator, VirtualClock
from smpdevice.cli import main
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    calibrate_default_pen,
    on_pen_time,
    short_profile,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def data_dir(tmp_path, monkeypatch, sim_virtual_time):  # pensim:// on virtual time (conftest)
    path = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(path))
    monkeypatch.delenv("SMP_LOG_LEVEL", raising=False)  # the technician's default: warning
    path.mkdir()
    return path


def test_a_fault_during_run_is_one_line_on_the_terminal_and_the_frames_in_the_log(
        data_dir, tmp_path):
    calibrate_default_pen(data_dir)
    profile = short_profile(tmp_path, seconds="30")
    # the pen on the clock the run drives, jammed at the first step with the needle running (on
    # the wall clock a loaded machine could stall the run past its pen's lease: another fault)
    with PenSimulator(seed=0, name="term-fault", clock=VirtualClock(host_driven=True)) as sim:
        def jam(_now_s: float) -> bool:
            if sim.firmware.state.name != "RUNNING":
                return False
            sim.inject("jam")
            return True

        on_pen_time(sim, jam)
        result = CliRunner().invoke(main, ["run", str(profile), "-t", "ana", "--screening",
                                           str(SCREENING), "--port", sim.url])
    assert result.exit_code == 4, result.output
    log = data_dir / "smp.log"
    fault_lines = [ln for ln in result.stderr.splitlines() if "fault" in ln.lower()]
    assert fault_lines, result.stderr
    assert "last_frames" not in result.stdout
    for line in result.stderr.splitlines():  # one short line per event, no frame dump
        assert len(line) < 400, line
        assert "tx seq=" not in line
    assert any(f"last_frames in {log}" in ln for ln in fault_lines), result.stderr
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    events = [json.loads(ln) for ln in log.read_text().splitlines()]
    (fault,) = [e for e in events if e["event"] == "fault"]
    assert any("tx seq=" in f for f in fault["last_frames"])


def test_the_detail_log_is_rotated_and_bounded(data_dir):
    import structlog

    from smpdevice.logs import DETAIL_LOG_BACKUPS, DETAIL_LOG_MAX_BYTES, configure

    configure("error", detail_log=True)
    log = structlog.get_logger("test")
    for i in range(DETAIL_LOG_MAX_BYTES * (DETAIL_LOG_BACKUPS + 2) // 1000):
        log.info("filler", i=i, pad="x" * 900)
    files = sorted(data_dir.glob("smp.log*"))
    assert len(files) == DETAIL_LOG_BACKUPS + 1
    for f in files:
        assert f.stat().st_size <= DETAIL_LOG_MAX_BYTES + 2000
        assert stat.S_IMODE(f.stat().st_mode) == 0o600


def _smp(*args: str, columns: int = 40, env: dict | None = None) -> SimpleNamespace:
    """`smp ARGS` with its output piped (not a terminal) and COLUMNS set, in this process."""
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns), **(env or {})})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))  # a crash, shown
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=stderr)


UNIT = r"(mm|Hz|ms|%|µm|um|A|°C|C|s)"


def _number_wrapped_from_unit(text: str) -> list[str]:
    """Lines that end in a number whose unit starts the next line."""
    lines = text.splitlines()
    return [f"{a!r} / {b!r}" for a, b in itertools.pairwise(lines)
            if re.search(r"\d$", a.rstrip()) and re.match(rf"\s*{UNIT}\b", b)]


def test_narrow_piped_output_never_wraps_a_number_away_from_its_unit(data_dir):
    outputs = [
        _smp("calibrate", "--port", "pensim://", "--auto", "-t", "ana"),
        _smp("info", "--port", "pensim://"),
        _smp("demo", "--quick"),
        _smp("monitor", "--once", "--port", "pensim://"),
    ]
    for out in outputs:
        assert out.returncode == 0, out.stderr
        assert _number_wrapped_from_unit(out.stdout) == [], out.stdout
    # Piped, each line is the program's own: a receipt stays whole, so it can be copied.
    assert re.search(r"SMP-RECEIPT/1 S\w+ #\d+ [0-9a-f]{64}\n", outputs[2].stdout), \
        outputs[2].stdout
    # The calibration residual is in mm like every other depth (demo and calibrate alike).
    for out in (outputs[0], outputs[2]):
        units = re.findall(r"worst residual [-+\d.]+ (\w+)", out.stdout)
        assert units and set(units) == {"mm"}, out.stdout


def test_a_terminal_wraps_but_never_between_a_number_and_its_unit():
    import io

    from smpdevice.cli.console import CliConsole, keep_units

    assert keep_units("depth 0.40 mm at 90 Hz, 40 %") == "depth 0.40\u00a0mm at 90\u00a0Hz, " \
        "40\u00a0%"
    buffer = io.StringIO()
    console = CliConsole(file=buffer, width=16, force_terminal=True, color_system=None)
    console.print("worst residual 0.0007 mm and depth 12.50 mm at 105.0 Hz")
    assert _number_wrapped_from_unit(buffer.getvalue().replace("\u00a0", " ")) == []


# Every command's error path: (arguments, extra environment). Each fails with a message on
# stderr and nothing on stdout. Commands without a user-causable error here: ports, diagram,
# sessions schema, keys show, protocol vectors (they read nothing from the user); `config show`
# prints its table (the result) even for a broken file, with the problem on stderr.
BAD = "/nonexistent/dir/ttyX"
ERROR_PATHS: list[tuple[list[str], dict[str, str]]] = [
    (["demo", "--quick"], {"SMP_DATA_DIR": "/dev/null/data"}),
    (["info", "--port", BAD], {}),
    (["estop", "--port", BAD], {}),
    (["clear", "--port", BAD, "--yes"], {}),
    (["monitor", "--once", "--port", BAD], {}),
    (["calibrate", "--port", BAD, "-t", "ana"], {}),
    (["calibrations", "list", "--db", "/nonexistent/dir/c.sqlite"], {}),
    (["calibrations", "show", "nope"], {}),
    (["profile", "check", "{bad}"], {}),
    (["profile", "check", "examples/session1_base_density.yaml", "--envelope", "{bad}"], {}),
    (["profile", "schema", "--indent", "wide"], {}),
    (["envelope", "check", "{bad}"], {}),
    (["envelope", "show", "--file", "{bad}"], {}),
    (["run", "{bad}", "--port", "pensim://", "-t", "ana"], {}),
    (["sessions", "list", "--db", "/nonexistent/dir/p.sqlite"], {}),
    (["sessions", "show", "S0000", "--db", "/nonexistent/dir/p.sqlite"], {}),
    (["sessions", "export", "--db", "/nonexistent/dir/p.sqlite"], {}),
    (["sessions", "verify", "--db", "/nonexistent/dir/p.sqlite"], {}),
    (["sessions", "sync", "--url", "nope://x", "--db", "/nonexistent/dir/p.sqlite"], {}),
    (["sim", "--faults", "bogus"], {}),
    (["protocol", "decode", "ZZ"], {}),
    (["protocol", "c-codec", "--out-dir", "/dev/null/x"], {}),
    (["config", "check", "{badcfg}"], {}),
    (["serve", "--port", BAD, "--listen", "127.0.0.1:0", "--no-socket"], {}),
    (["--log-level", "bogus", "info"], {}),
]


@pytest.mark.parametrize(("args", "env"), ERROR_PATHS, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else "")
def test_errors_go_to_stderr_and_stdout_stays_clean(data_dir, tmp_path, args, env):
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones: [1, 2\n")
    badcfg = tmp_path / "bad.toml"
    badcfg.write_text("port = 5\nbogus = true\n")
    fill = {"{bad}": str(bad), "{badcfg}": str(badcfg)}
    args = [fill.get(a, a) for a in args]
    env = {k: fill.get(v, v) for k, v in env.items()}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code not in (0, None), result.output
    assert result.stdout == "", result.stdout
    assert result.stderr.strip(), "no message"
    assert "Traceback" not in result.stderr


def test_a_bad_envelope_is_one_line_per_issue_like_a_bad_profile(data_dir, tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text("crown:\n  epidermal_floor_mm: -1\n  dermal_ceiling_mm: foo\n")
    result = CliRunner().invoke(main, ["run", "examples/session1_base_density.yaml", "--port",
                                       "pensim://", "-t", "ana", "--envelope", str(env)])
    assert result.exit_code == 1 and result.stdout == ""
    head, *issues = result.stderr.strip().splitlines()
    assert head.startswith(f"error: envelope {env} has 2 errors")
    assert [i.split(" = ")[0].strip() for i in issues] == ["crown.epidermal_floor_mm",
                                                          "crown.dermal_ceiling_mm"]
    assert "http" not in result.stderr and "pydantic" not in result.stderr


def test_piped_run_output_has_no_truncated_progress_frames(data_dir):
    demo = _smp("demo", "--quick", columns=40)
    assert demo.returncode == 0, demo.stderr
    assert "…" not in demo.stdout, demo.stdout
    assert re.search(r"^  pass 1 top +completed strokes \d+, impressions \d+$", demo.stdout,
                     re.M), demo.stdout
