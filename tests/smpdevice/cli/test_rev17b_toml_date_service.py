# ruff: noqa: F811  (the service fixture, imported)
"""docs/integration.md / README: a profile checked through a service is checked "as the local
check (same lines, same exit codes)"; session 17 reads it by the strict loader locally and
sends its data as JSON. A TOML profile may hold a date or time value (TOML has them; the
strict loader keeps them as datetime objects): the local check says `is not text`, exit 1;
through the service the JSON encoding raises TypeError ("Object of type date is not JSON
serializable") and the command ends on a traceback, not the local check's line and exit."""
from __future__ import annotations

import pytest

from tests.smpdevice import shell
from tests.smpdevice.cli.test_rev17_profiles_service_files import (
    ROOT,
    SCREENING,
    TOML_PROFILE,
    _local,
    service,  # noqa: F401 - a fixture
)

DATED = TOML_PROFILE.replace('client_ref = "C-0042"', "client_ref = 1979-05-27")


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_toml_date_through_the_service_is_refused_as_locally(tmp_path, service, command):
    profile = tmp_path / "dated.toml"
    profile.write_text(DATED)
    args = (("profile", "check", str(profile)) if command == "check"
            else ("run", str(profile), "-t", "ana", "--screening", SCREENING))
    local = shell.smp(("profile", "check", str(profile)), env=_local(service), cwd=ROOT)
    assert local.returncode == 1 and "is not text" in local.stdout + local.stderr
    remote = shell.smp(args, env=service, cwd=ROOT)
    said = remote.stdout + remote.stderr
    assert "Traceback" not in said and "TypeError" not in said, said[-600:]
    assert remote.returncode == 1, (remote.returncode, said[-600:])
    assert "is not text" in said, said[-600:]
