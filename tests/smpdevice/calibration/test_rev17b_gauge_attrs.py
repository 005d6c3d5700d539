"""Review 17 (b17b, fixed): `run_calibration` accepted as `gauge` any object with a `read_mm`,
then failed with AttributeError (`description`, then `manual`, the second after the controller
was put in calibrating). docs/integration.md: "`run_calibration` checks every argument (the
technician's name, gauge, ...) before the pen moves: `InvalidArgument`, nothing sent". A gauge
needs `read_mm(request)`, a `description` (text) and `manual` (True/False); `run_verify` too."""

from __future__ import annotations

import pytest

from smpdevice.calibration.verify import run_verify
from smpdevice.calibration.workflow import run_calibration
from smpdevice.checks import InvalidArgument
from smpdevice.control import PenController, State
from smpdevice.control.calibration import Calibration
from tests.smpdevice.virtual_time import virtual_sim


class ReadsOnly:
    def read_mm(self, request: object) -> float:
        return 0.5


class Described(ReadsOnly):
    description = "a bench gauge"


class NamedByNone(ReadsOnly):
    description = None
    manual = False


class ManualAsText(Described):
    manual = "yes"


GAUGES = [ReadsOnly(), Described(), NamedByNone(), ManualAsText()]
IDS = ["no-description", "no-manual", "description-None", "manual-text"]


def _refusal(call) -> tuple[Exception | None, list[State]]:
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        states: list[State] = []
        ctl.add_state_listener(lambda old, new, why: states.append(new))
        try:
            call(ctl)
            raised: Exception | None = None
        except Exception as exc:
            raised = exc
    return raised, states


@pytest.mark.parametrize("gauge", GAUGES, ids=IDS)
def test_a_gauge_missing_what_the_run_reads_is_an_invalid_argument(gauge):
    raised, states = _refusal(lambda ctl: run_calibration(ctl, gauge, technician="ana"))
    assert isinstance(raised, InvalidArgument), f"{type(raised).__name__}: {raised}"
    assert "gauge" in str(raised) and "nothing was sent" in str(raised), raised
    assert State.CALIBRATING not in states, states  # refused before calibrating began


@pytest.mark.parametrize("gauge", GAUGES, ids=IDS)
def test_verify_refuses_the_same_gauges(gauge):
    def verify(ctl: PenController) -> None:
        cal = Calibration.linear(pen_serial=ctl.identity.serial, technician="ana",
                                 offset_mm=-0.4, gain=0.95, simulated=True)
        run_verify(ctl, gauge, cal)

    raised, states = _refusal(verify)
    assert isinstance(raised, InvalidArgument), f"{type(raised).__name__}: {raised}"
    assert "gauge" in str(raised), raised
    assert State.CALIBRATING not in states, states
