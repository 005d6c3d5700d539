"""A profile given to `smp run --service URL` / `smp profile check --service URL` used to be
read with `Path.read_text` and sent as YAML unless named `.json`: a `.toml` profile was refused
("the top level is text") though the local check said ok, a FIFO hung, `/dev/zero` behind a
`.yaml` name was read unbounded, and a big profile valid locally hit the service's upload cap.
Now it is read by the strict loader, as locally, and its data sent as JSON (review 17).
Promised: docs/integration.md "Files"; the check through a service is "as the local check
(same lines, same exit codes)"."""

from __future__ import annotations

import os
import threading
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
SCREENING = str(ROOT / "examples/screening_clear.yaml")
TOML_PROFILE = """\
schema_version = 1
session_kind = "base_density"
client_ref = "C-0042"
[zones.crown]
needle = "1RL 0.25mm"
depth_mm = 0.5
speed_hz = 90
duty_pct = 40
period_ms = 100
[[plan]]
zone = "crown"
duration_s = 0.3
"""


@pytest.fixture
def service(tmp_path, monkeypatch) -> Iterator[dict[str, str]]:
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SMP_DATA_DIR", str(data))
    model = PenModel(seed=0)
    CalibrationStore(data / "calibrations.sqlite").save(Calibration.linear(
        pen_serial=model.serial, technician="ana", offset_mm=-model.offset_mm, gain=model.gain,
        **fit_points(-model.offset_mm, model.gain)))
    with ServiceHandle(ServiceOptions(port="pensim://?clock=virtual", listen="127.0.0.1:0",
                                      data_dir=data, unix_socket=False)) as handle:
        env = {**os.environ, "SMP_DATA_DIR": str(data), "SMP_SERVICE": handle.url,
               "SMP_KEY_DIR": str(tmp_path / "keys"), "SMP_CONFIG": str(tmp_path / "none.toml")}
        env.pop("SMP_ENVELOPE", None)
        yield env


def _local(service: dict[str, str]) -> dict[str, str]:
    return {**service, "SMP_SERVICE": ""}


def test_a_toml_profile_checks_through_the_service_as_locally(tmp_path, service):
    profile = tmp_path / "session.toml"
    profile.write_text(TOML_PROFILE)
    local = shell.smp(("profile", "check", str(profile)), env=_local(service), cwd=ROOT)
    assert local.returncode == 0, local.stderr
    remote = shell.smp(("profile", "check", str(profile)), env=service, cwd=ROOT)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout.splitlines()[:2] == local.stdout.splitlines()[:2]  # ok line, hash


def test_a_toml_profile_runs_through_the_service(tmp_path, service):
    profile = tmp_path / "session.toml"
    profile.write_text(TOML_PROFILE)
    run = shell.smp(("run", str(profile), "-t", "ana", "--screening", SCREENING),
                    env=service, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-400:]


def test_a_big_profile_valid_locally_checks_through_the_service(tmp_path, service):
    """~900 KiB of comments (under the loader's 1 MiB cap, over the service's upload cap):
    what is sent is the data read, not the file's text."""
    profile = tmp_path / "session.yaml"
    text = (ROOT / "examples/session1_base_density.yaml").read_text()
    profile.write_text(("# " + "x" * 1000 + "\n") * 900 + text)
    local = shell.smp(("profile", "check", str(profile)), env=_local(service), cwd=ROOT)
    remote = shell.smp(("profile", "check", str(profile)), env=service, cwd=ROOT)
    assert (local.returncode, remote.returncode) == (0, 0), remote.stderr[-300:]


@pytest.mark.parametrize("command", ["check", "run"])
def test_dev_zero_behind_a_yaml_name_is_refused_in_one_line(tmp_path, service, command):
    zero = tmp_path / "session.yaml"
    zero.symlink_to("/dev/zero")
    args = (("profile", "check", str(zero)) if command == "check"
            else ("run", str(zero), "-t", "ana", "--screening", SCREENING))
    port = ("--port", "pensim://?clock=virtual") if command == "run" else ()
    local = shell.smp((*args, *port), env=_local(service), cwd=ROOT)
    remote = shell.smp(args, env=service, cwd=ROOT)
    assert "regular file" in local.stderr, local.stderr
    assert "regular file" in remote.stderr and "Traceback" not in remote.stderr, remote.stderr
    assert remote.returncode == local.returncode == 1


def test_a_fifo_profile_is_refused_through_the_service(tmp_path, service):
    fifo = tmp_path / "session.yaml"
    os.mkfifo(fifo)
    done = threading.Event()
    answer: list = []

    def run() -> None:
        answer.append(shell.smp(("run", str(fifo), "-t", "ana", "--screening", SCREENING),
                                env=service, cwd=ROOT))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    # the local run refuses it at once, without reading; a run that reads waits forever: the
    # bound only has to outlast a loaded machine's slowest refusal
    refused = done.wait(60)
    if not refused:
        with open(fifo, "w"):  # a writer that closes at once: the blocked read gets EOF
            pass
        done.wait(30)
    assert refused, "smp run FIFO --service waited on the pipe instead of refusing it"
    assert answer[0].returncode != 0 and "regular file" in answer[0].stderr
