"""`smp profile check` (and `smp envelope show`) with SMP_SERVICE exported: `smp run` then goes
through that `smp serve`, held to its own `--envelope`, so the check is the service's.

Promised: `smp profile check --help` "The envelope is the one `smp run` uses"; README "`smp
profile check` refuses what `smp run` refuses"; docs/safety.md "what a check says, a run does".
Found (review 16): the check said ok against the built-in zones for a profile the run through
the service refused, and the run blamed the service's envelope limit on "the pen's hard limits".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice import shell
from tests.smpdevice.conftest import fit_points

ROOT = Path(__file__).resolve().parents[3]
PROFILE = """\
schema_version: 1
session_kind: base_density
client_ref: C-0042
zones:
  crown: {{needle: 1RL 0.25mm, depth_mm: {depth}, speed_hz: 90, duty_pct: 40, period_ms: 100}}
plan:
  - {{zone: crown, duration_s: 1}}
"""


@pytest.fixture
def setup(tmp_path, monkeypatch) -> Iterator[tuple[dict[str, str], Path, str]]:
    envelope = tmp_path / "clinic.yaml"
    envelope.write_text("crown:\n  dermal_ceiling_mm: 0.5\n")
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE.format(depth=0.7))  # inside the built-in crown, not the clinic's
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))  # the service reads its calibration there
    model = PenModel(seed=0)  # the pen of pensim://, calibrated as a perfect technician would
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="ana", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    with ServiceHandle(ServiceOptions(port="pensim://?clock=virtual", listen="127.0.0.1:0",
                                      data_dir=data, unix_socket=False,
                                      envelope=str(envelope))) as handle:
        env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_SERVICE": handle.url}
        env.pop("SMP_ENVELOPE", None)
        yield env, profile, handle.url


def _run(env, profile):
    return shell.smp(("run", str(profile), "-t", "ana", "--screening",
                      "examples/screening_clear.yaml"), env=env, cwd=ROOT)


def test_profile_check_agrees_with_a_run_through_the_service(setup):
    env, profile, url = setup
    run = _run(env, profile)
    assert run.returncode == 1 and "dermal ceiling 0.5" in run.stderr, run.stderr  # refused
    check = shell.smp(("profile", "check", str(profile)), env=env, cwd=ROOT)
    assert check.returncode == 1, (
        "`smp profile check` said the profile is safe to play; `smp run` refused it:\n"
        f"{check.stdout}\nrun: {run.stderr}")
    assert "dermal ceiling 0.5" in check.stderr and url in check.stderr, check.stderr
    as_json = shell.smp(("profile", "check", str(profile), "--json"), env=env, cwd=ROOT)
    answer = json.loads(as_json.stdout)
    assert as_json.returncode == 1 and not answer["ok"] and answer["envelope"]["service"] == url
    # --envelope beside the service is refused (the run through it refuses it too)
    both = shell.smp(("profile", "check", str(profile), "--envelope", "x.yaml"), env=env,
                     cwd=ROOT)
    assert both.returncode == 2 and "--service" in both.stderr, both.stderr


def test_a_profile_the_service_accepts_is_ok_with_its_hash(setup):
    env, profile, url = setup
    profile.write_text(PROFILE.format(depth=0.45))
    check = shell.smp(("profile", "check", str(profile)), env=env, cwd=ROOT)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"ok: {profile}") and "profile hash: " in check.stdout
    assert f"service at {url}" in check.stdout, check.stdout
    local = shell.smp(("profile", "check", str(profile)),
                      env={**env, "SMP_SERVICE": ""}, cwd=ROOT)  # the same file, checked here
    assert local.returncode == 0 and "built-in envelope" in local.stdout, local.stdout
    hash_line = next(line for line in local.stdout.splitlines() if "profile hash" in line)
    assert hash_line in check.stdout  # the same profile hash either way


def test_a_service_envelope_refusal_is_not_blamed_on_the_pens_hard_limits(setup):
    env, profile, _url = setup
    run = _run(env, profile)
    assert run.returncode == 1, run.stderr
    assert "pen's hard limits" not in run.stderr, run.stderr  # the pen reaches 2.2 mm


def test_envelope_show_shows_the_services_envelope(setup):
    env, _profile, url = setup
    shown = shell.smp(("envelope", "show"), env=env, cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["source"] == f"service {url}"
    assert record["zones"]["crown"]["dermal_ceiling_mm"] == 0.5  # the service's, not built in
