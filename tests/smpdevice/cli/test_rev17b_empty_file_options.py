"""`smp run` refuses a file option given as '' (a script's unset variable) the way it refuses
`--resume ''`: exit 2, one line naming the option, nothing opened. `--envelope ''` said
"error: : no such file; check the path" (review 17, b17a)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main

PROFILE = Path(__file__).resolve().parents[3] / "examples" / "session1_base_density.yaml"


@pytest.mark.parametrize("option", ["--db", "--calibrations", "--envelope"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_file_option_is_refused_before_anything_is_opened(option, value):
    data = Path(os.environ["SMP_DATA_DIR"])
    ran = CliRunner().invoke(main, ["run", str(PROFILE), "-t", "ana", option, value,
                                    "--port", "pensim://?clock=virtual"])
    assert ran.exit_code == 2, ran.output
    assert f"{option} {value!r}: no file was given" in ran.output, ran.output
    assert "Traceback" not in ran.output
    assert not (data / "passlog.sqlite").exists()
