"""Review 14 (cli): `smp sessions list/show` print what was recorded as given, never as Rich
markup. A technician named `[/]` (which `smp run -t` accepts) made every listing of the
station a MarkupError traceback (exit 1), and `[bold]ana[/bold]` was listed as "ana"."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from tests.smpdevice.records.test_passlog import ENVELOPE, SCREENING


@pytest.mark.parametrize("name", ["[/]", "[bold]ana[/bold]", "[link=x]ana"])
def test_list_and_show_print_the_recorded_name(tmp_path: Path, name: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    db = tmp_path / "passlog.sqlite"
    with PassLog(db) as log:
        sid = log.open_session(technician=name, client_ref=f"C-{name}",
                               session_kind="base_density", pen_serial="SMP-0001",
                               firmware_version="1.2.0", calibration_id="cal-7",
                               profile_hash="ab" * 32, screening=SCREENING, simulated=True,
                               envelope=ENVELOPE)
    for args in (["sessions", "list"], ["sessions", "show", sid]):
        shown = CliRunner().invoke(main, [*args, "--db", str(db)])
        assert shown.exit_code == 0, shown.output
        assert name in shown.output and f"C-{name}" in shown.output, shown.output
