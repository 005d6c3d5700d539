"""Review 14 (svc): a `--service` typed on the command line wins over SMP_SERVICE, SMP_PORT and
the config (README, "The station config"). A typed empty `--service ''` (a script's unset
variable) was taken as no option at all: `smp estop` then E-stopped SMP_PORT's pen and said
"E-stop latched", exit 0, while the served pen was never told; `smp info` opened pensim://.
It is now a usage error (exit 2) that says nothing was sent, before any pen or service."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from smpdevice.cli import main


@pytest.mark.parametrize("command", [["estop"], ["info"], ["clear", "--yes"], ["monitor"],
                                     ["calibrate", "--auto", "-t", "ana"]])
@pytest.mark.parametrize("typed", ["", "   "])
def test_a_typed_empty_service_never_falls_back_to_another_pen(monkeypatch, tmp_path, command,
                                                               typed):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SMP_SERVICE", "ws://127.0.0.1:1/rpc")  # the station's service
    monkeypatch.setenv("SMP_PORT", "pensim://?clock=virtual")  # some other pen
    done = CliRunner().invoke(main, [*command, "--service", typed])
    assert done.exit_code == 2, done.output
    assert "is empty, so nothing was sent" in done.output, done.output
    assert "pensim://" not in done.output and "latched" not in done.output, done.output
