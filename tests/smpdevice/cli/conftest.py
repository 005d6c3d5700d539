"""`sim_virtual_time`: the built-in simulated pens an in-process `smp` opens run on virtual time.

SMP_SIM_CLOCK=virtual (docs/simulator.md): a `pensim://` pen and `smp demo`'s pen run on a
virtual clock that the connected controller advances whenever it waits, so a session plays as
fast as the machine computes it, with the same figures. A module uses it with
`pytestmark = pytest.mark.usefixtures("sim_virtual_time")`, a test by naming it. Not for tests
of a real `smp` process whose timing is the point (Ctrl-C at a moment of a run): the variable
is in this process's environment, so a child started from it inherits it.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def sim_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMP_SIM_CLOCK", "virtual")
