"""`smp sessions export -o FILE`: a stop signal (SIGTERM here) that lands once the export was
renamed onto FILE (`os.replace` returned), before its block ended, reported "interrupted"
(exit 130) although the whole file was written. It is reported written: exit 0, the
"exported N passes" line. A stop while the rows are written still ends it as before (no file:
test_rev15_export_sigterm, test_review12_fixrec4_export_output)."""

from __future__ import annotations

import os
import signal

from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.cli.interrupt import CTRL_C

from .test_review12_fixrec4_export_output import _log


def test_a_stop_signal_just_after_the_rename_reports_the_file_written(tmp_path, monkeypatch):
    db = _log(tmp_path / "passlog.sqlite", sessions=2)
    out = tmp_path / "passes.csv"
    real_replace = os.replace
    sent: list[bool] = []

    def replace_then_signal(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if str(dst) == str(out.resolve()):
            # the real signal, its handler run at the first bytecode after the call (as a
            # service manager's SIGTERM landing there); only with the command's own handler
            assert signal.getsignal(signal.SIGTERM) == CTRL_C._on_sigint
            sent.append(True)
            signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    result = CliRunner().invoke(main, ["sessions", "export", "--format", "csv", "--db",
                                       str(db), "-o", str(out)])
    assert sent, "the export never renamed its file"
    assert result.exit_code == 0, result.output
    assert "exported 6 passes to" in result.output, result.output
    assert "interrupted" not in result.output, result.output
    assert len(out.read_text().splitlines()) == 7  # the header and every pass: whole
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
