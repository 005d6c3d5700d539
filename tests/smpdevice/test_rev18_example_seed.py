"""examples/session_software.py --seed takes the seeds `pensim://?seed=` takes (the check of
`smp demo --seed`) and refuses the others as a usage error (exit 2, argparse's one line)
before any file is read or pen started: 99999999999999999999 was a traceback after loading the
profile, "1_0" and full-width digits ran other pens."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from simulators.pen_model import SEED_MAX

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "session_software.py"


def _example():
    spec = importlib.util.spec_from_file_location("session_software_rev18", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", ["99999999999999999999", str(-SEED_MAX - 1), "1_0", "٣"])
def test_a_seed_the_url_refuses_is_a_usage_error(seed, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")  # a seed let through plays fast, then fails
    with pytest.raises(SystemExit) as stopped:
        _example().main(["--simulator", "--quick", "--seed", seed])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "error:" in x]
    assert "--seed" in line and str(SEED_MAX) in line and "Traceback" not in err, err
    assert not (tmp_path / "data").exists()


def test_a_seed_the_url_takes_is_taken():
    assert _example().seed_option(str(-SEED_MAX)) == -SEED_MAX
