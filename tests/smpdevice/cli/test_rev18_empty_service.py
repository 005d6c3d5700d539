"""Review 18 (cli): `--service ""` (a script's unset variable) switched the service off for
`smp profile check` and `smp envelope show`: with SMP_SERVICE set, the profile was checked
against (and the envelope shown as) the built-in envelope, exit 0, instead of the service's
that `smp run` is held to. Both now refuse it as every other command does (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main

PROFILE = str(Path(__file__).resolve().parents[3] / "examples" / "session2_shading.yaml")


@pytest.mark.parametrize("command", [["profile", "check", PROFILE], ["envelope", "show"]])
@pytest.mark.parametrize("typed", ["", "   "])
def test_an_empty_service_option_is_refused_not_taken_as_no_service(monkeypatch, command,
                                                                    typed):
    # A service is in force for this station (nothing answers there: the check cannot be
    # made, so it must not be reported as passed).
    monkeypatch.setenv("SMP_SERVICE", "ws://127.0.0.1:1/rpc")
    without = CliRunner().invoke(main, command)
    assert without.exit_code == 2, without.output  # SMP_SERVICE in force: not reached
    done = CliRunner().invoke(main, [*command, "--service", typed])
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert "is empty, so nothing was sent" in done.output, done.output
    assert "built-in" not in done.output and '"zones"' not in done.output, done.output


@pytest.mark.parametrize("command", [["profile", "check", PROFILE, "--envelope"],
                                     ["envelope", "show", "--file"]])
def test_an_empty_envelope_file_is_refused_not_the_station_envelope(command):
    done = CliRunner().invoke(main, [*command, ""])
    assert done.exit_code == 2, (done.exit_code, done.output)
    assert f"{command[-1]} '': no file was given" in done.output, done.output
    assert "built-in" not in done.output and '"zones"' not in done.output, done.output
