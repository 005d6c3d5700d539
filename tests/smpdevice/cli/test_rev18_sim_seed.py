"""`smp sim --seed` takes the seeds `pensim://?seed=` takes and refuses the others as a usage
error (one `Error:` line, exit 2, no pen served): it took "1_0" and full-width digits as other
pens (and served them), and 99999999999999999999 ended in a traceback. One check with
`smp demo --seed` (smpdevice.cli.demo.seed_number)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from serial import SerialException

from simulators.pen_model import SEED_MAX
from simulators.protocol_pensim import simulator_from_options
from smpdevice.cli import main
from smpdevice.cli.sim import sim

REFUSED = [str(SEED_MAX + 1), str(-SEED_MAX - 1), "99999999999999999999", "1_0", "٣", " 5", "0x10"]
TAKEN = [str(SEED_MAX), str(-SEED_MAX), "0", "-3", "007"]
(SEED,) = [p for p in sim.params if p.name == "seed"]


@pytest.mark.parametrize("seed", REFUSED)
def test_a_seed_the_simulator_url_refuses_is_refused_as_the_option_is_parsed(seed):
    # (the option's own parse: a seed it let through would serve a pen until Ctrl-C)
    with pytest.raises(SerialException):
        simulator_from_options({"seed": seed})  # the URL's own judgement
    with pytest.raises(click.BadParameter) as refused:
        SEED.type_cast_value(click.Context(sim), seed)
    assert str(SEED_MAX) in str(refused.value)


@pytest.mark.parametrize("seed", [str(SEED_MAX + 1), "99999999999999999999"])
def test_a_seed_out_of_range_is_one_error_line_not_a_traceback(seed):
    ran = CliRunner().invoke(main, ["sim", "--tcp", "0", "--seed", seed])
    assert ran.exit_code == 2, ran.output
    errors = [line for line in ran.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "--seed" in errors[0] and str(SEED_MAX) in errors[0], ran.output
    assert "Traceback" not in ran.output and "gauge:" not in ran.output, ran.output


@pytest.mark.parametrize("seed", TAKEN)
def test_a_seed_the_simulator_url_takes_is_taken(seed):
    with simulator_from_options({"seed": seed}) as pen:
        url_seed = pen.seed
    assert SEED.type_cast_value(click.Context(sim), seed) == url_seed == int(seed)
