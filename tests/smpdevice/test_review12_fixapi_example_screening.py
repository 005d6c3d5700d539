"""The integrator's example (examples/session_software.py, pasted whole in docs/integration.md)
reads the screening as `smp run --screening` does, through the strict loader: an answer given
twice is refused naming both lines (a "yes" never silently overwritten by a later "no"),
YAML 1.1's `no`/`yes` are text, not booleans, and a JSON file with a key twice is refused
too; each before any pen or pass log is touched (review 12 REVF-12)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from smpdevice.errors import SmpError
from smpdevice.sessions.screening import QUESTIONS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "session_software.py"
CLEAR = (ROOT / "examples" / "screening_clear.yaml").read_text()
NO = json.dumps({q: False for q in QUESTIONS})


def example():
    spec = importlib.util.spec_from_file_location("session_software_fixapi", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = {
    "yes, then no further down": ("yaml", CLEAR.replace("sunburn: false", "sunburn: true")
                                  + "sunburn: false\n", "appears twice"),
    "no, then no again": ("yaml", CLEAR + "eczema: false\n", "appears twice"),
    "YAML 1.1 no": ("yaml", CLEAR.replace("sunburn: false", "sunburn: no"), "sunburn"),
    "YAML 1.1 off": ("yaml", CLEAR.replace("eczema: false", "eczema: off"), "eczema"),
    "JSON with a key twice": ("json", NO[:-1] + ', "sunburn": false}', "appears twice"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_example_refuses_what_smp_run_refuses_before_any_pen(tmp_path, monkeypatch, case):
    suffix, text, named = CASES[case]
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
    screening = tmp_path / f"screening.{suffix}"
    screening.write_text(text)
    with pytest.raises(SmpError) as err:
        example().main(["--simulator", "--quick", "--screening", str(screening)])
    assert named in str(err.value), str(err.value)
    assert not (tmp_path / "data").exists(), "a pen was calibrated or a session opened"


def test_the_example_reads_the_screening_with_the_strict_loader():
    """The doc's copy is the file itself (test_examples.py); no YAML 1.1 reader is in it."""
    source = EXAMPLE.read_text()
    assert "load_screening_file(args.screening)" in source
    assert "yaml.safe_load" not in source and "import yaml" not in source
