"""Review 14 (cli): `smp run --db X --calibrations X` was refused saying "nothing was changed",
after the calibration store had made X. The same file named twice is now refused first, and
nothing is made."""

from __future__ import annotations

from click.testing import CliRunner

from smpdevice.cli import main

EXAMPLES = "examples"


def test_one_file_for_both_databases_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path))
    same = tmp_path / "x.sqlite"
    ran = CliRunner().invoke(main, [
        "run", f"{EXAMPLES}/session1_base_density.yaml", "--port", "pensim://?clock=virtual",
        "-t", "ana", "--screening", f"{EXAMPLES}/screening_clear.yaml",
        "--db", str(same), "--calibrations", str(tmp_path / "." / "x.sqlite")])
    assert ran.exit_code == 2, ran.output
    assert "both name" in ran.output and "nothing was changed" in ran.output, ran.output
    assert list(tmp_path.iterdir()) == []
