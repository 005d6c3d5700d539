"""`smp demo --seed` takes the seeds `pensim://?seed=` takes, and refuses the others (huge,
past -SEED_MAX, "1_0", other digits) the usual way: one `Error:` line, usage exit 2, nothing
run. Before, it ran a demo on a pen the simulator's URL would refuse."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from serial import SerialException

from simulators.pen_model import SEED_MAX
from simulators.protocol_pensim import simulator_from_options
from smpdevice.cli import main
from smpdevice.cli.demo import SeedNumber

REFUSED = [str(SEED_MAX + 1), str(-SEED_MAX - 1), "99999999999999999999", "1_0", "٣", " 5", "0x10"]
TAKEN = [str(SEED_MAX), str(-SEED_MAX), "0", "-3", "007"]


@pytest.mark.parametrize("seed", REFUSED)
def test_a_seed_the_simulator_url_refuses_is_refused_in_one_line(seed, tmp_path, monkeypatch):
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(SerialException):
        simulator_from_options({"seed": seed})  # the URL's own judgement
    ran = CliRunner().invoke(main, ["demo", "--quick", "--seed", seed])
    assert ran.exit_code == 2, ran.output
    errors = [line for line in ran.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--seed" in errors[0] and str(SEED_MAX) in errors[0], ran.output
    assert "Demo finished" not in ran.output
    assert not (tmp_path / "data" / "passlog.sqlite").exists()


@pytest.mark.parametrize("seed", TAKEN)
def test_a_seed_the_simulator_url_takes_is_taken(seed):
    with simulator_from_options({"seed": seed}) as sim:
        url_seed = sim.seed
    assert SeedNumber().convert(seed, None, None) == url_seed == int(seed)
