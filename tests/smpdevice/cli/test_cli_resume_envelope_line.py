"""`smp run --resume` (local) names the envelope that holds it ("checked against ...") only once
the resume's own checks have passed: a resume refused for its pen, its calibration, its
envelope or its screening leaves stdout without an envelope it never used, as a fresh `smp run`
refused for its envelope or profile does. On virtual time (SMP_SIM_CLOCK=virtual)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.cli.test_cli_resume import (
    served,  # noqa: F401 - a fixture
    served_interrupted,
)
from tests.smpdevice.cli.test_cli_run import (
    SCREENING,
    calibrate_default_pen,
    data_dir,  # noqa: F401 - a fixture
    short_profile,
)

pytestmark = pytest.mark.usefixtures("sim_virtual_time")
CLINIC = Path(__file__).resolve().parents[3] / "examples" / "clinic_envelope.yaml"


def smp(*args: str):
    return CliRunner().invoke(main, list(args))


def interrupted(data_dir: Path, tmp_path: Path) -> str:  # noqa: F811
    """A session jammed mid-plan and left open (exit 4); its id."""
    result = smp("run", str(short_profile(tmp_path)), "--port", "pensim://?faults=jam@0.2",
                 "-t", "ana", "--screening", str(SCREENING))
    assert result.exit_code == 4, result.output
    assert result.stdout.startswith("checked against "), result.stdout[:300]
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.closed_at is None
        return session.session_id


def test_a_refused_resume_prints_no_envelope_line(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    sid = interrupted(data_dir, tmp_path)
    narrow = tmp_path / "narrow.yaml"  # the plan's hairline depth is 0.32 mm
    narrow.write_text("hairline:\n  dermal_ceiling_mm: 0.3\n")
    yes = tmp_path / "screening_yes.yaml"
    yes.write_text(SCREENING.read_text().replace("sunburn: false", "sunburn: true"))
    base = ["run", "--resume", sid, "-t", "bo"]
    refusals = {
        "another pen": ([*base, "--port", "pensim://?seed=5", "--screening", str(SCREENING)],
                        "was recorded on pen SMP-"),
        "no calibration": ([*base, "--port", "pensim://", "--screening", str(SCREENING),
                            "--calibrations", str(tmp_path / "none.sqlite")],
                           "has no calibration"),
        "the envelope": ([*base, "--port", "pensim://", "--screening", str(SCREENING),
                          "--envelope", str(narrow)], "0.3"),
        "the screening": ([*base, "--port", "pensim://", "--screening", str(yes),
                           "--rescreen-after-min", "0"], "sunburn"),
    }
    for why, (args, message) in refusals.items():
        result = smp(*args)
        assert result.exit_code != 0, (why, result.output)
        assert message in result.output, (why, result.output)
        assert "checked against" not in result.stdout, (why, result.stdout)
        assert "Traceback" not in result.output, why
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        assert log.resumptions(sid) == [], "every refusal came before the resumption"
    resumed = smp(*base, "--port", "pensim://", "--screening", str(SCREENING),
                  "--rescreen-after-min", "0")
    assert resumed.exit_code == 0, resumed.output
    lines = resumed.stdout.splitlines()
    assert lines[0].startswith("checked against the built-in envelope"), lines[:3]
    assert lines[1].startswith(f"Resuming session {sid}"), lines[:3]


def test_a_resume_that_closes_names_its_envelope_first(data_dir, tmp_path):  # noqa: F811
    calibrate_default_pen(data_dir)
    sid = interrupted(data_dir, tmp_path)
    missing = smp("run", "--resume", "S-none", "--close", "--port", "pensim://")
    assert missing.exit_code == 2 and "checked against" not in missing.stdout
    closed = smp("run", "--resume", sid, "--close", "--port", "pensim://", "--envelope",
                 str(CLINIC))
    assert closed.exit_code == 4, closed.output  # it ended on its jam
    assert closed.stdout.startswith(f"checked against the envelope {CLINIC} (from the option)")
    assert f"Session {sid} is closed as it stands" in closed.stdout


# realtime: test_cli_resume.py's `served` (a realtime file): passes through a service on a
# wall-clock pen with 1 s leases, which a loaded machine can starve (review 12)
@pytest.mark.realtime
def test_through_the_service_a_refused_resume_prints_no_envelope_line(
        data_dir, tmp_path, served):  # noqa: F811
    """The same through `smp serve`: the service's envelope is named once session.resume (or
    session.close) has passed the service's own checks."""
    sim, handle = served
    url = handle.url
    sid = served_interrupted(data_dir, tmp_path, sim, url)
    latched = smp("run", "--resume", sid, "-t", "bo", "--service", url)
    assert latched.exit_code == 2 and "must be idle" in latched.output
    assert "checked against" not in latched.stdout, latched.stdout
    unknown = smp("run", "--resume", "S-none", "--close", "--service", url)
    assert unknown.exit_code != 0 and "checked against" not in unknown.stdout, unknown.output
    closed = smp("run", "--resume", sid, "--close", "--service", url)
    assert closed.exit_code == 4, closed.output
    assert closed.stdout.startswith(f"checked against the envelope of the service at {url}")
