"""Two threads disarm one armed pen at once (a service's stop after driver loss beside the
session's own; review of CI run 2026-11-29): both pass the state check while the first DISARM
is on the wire, the pen ACKs both (DISARM is accepted in IDLE), and the second ACK used to
fire `disarm` from `idle`: transitions.MachineError in a service thread. Now the late one
ends with a StateError (an SmpError: logged by the service), and the pen is idle.

The real controller on the simulator's virtual clock, its replies 60 ms late on the line."""

from __future__ import annotations

import threading

from firmware_protocol.codes import FirmwareState
from smpdevice.control import PenController, State
from smpdevice.control.states import StateError
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wall_until


def test_two_disarms_at_once_end_idle_with_no_error_outside_smp_errors():
    with (virtual_sim(seed=3, link_faults="delay=0.06") as sim,
          PenController.connect(sim.url, calibration=true_calibration(sim),
                                clock=sim.clock) as pen):
        pen.set_zone("crown")
        pen.set_setpoints(**CROWN)
        pen.arm()
        outcomes: list[BaseException | None] = []
        both_in = threading.Barrier(2)

        def disarm() -> None:
            both_in.wait(timeout=30)
            try:
                pen.disarm()
                outcomes.append(None)
            except BaseException as exc:  # what escapes is the finding
                outcomes.append(exc)

        threads = [threading.Thread(target=disarm) for _ in range(2)]
        # The pen's clock stands still until both DISARMs are in the engine (one on the wire,
        # one queued) or ended: a thread starved past the first's 60 ms (a loaded machine)
        # came in after the pen was idle, and the race under test never happened (its
        # StateError said "cannot disarm while idle"; a 0.3 s stall failed it every time).
        engine = pen._eng
        with sim.time.held():
            for t in threads:
                t.start()
            wall_until(lambda: len(engine.ops) + len(outcomes) >= 2, "both disarms asked")
        for t in threads:
            t.join(timeout=60)
        assert len(outcomes) == 2, outcomes
        errors = [e for e in outcomes if e is not None]
        assert all(isinstance(e, SmpError) for e in errors), errors
        assert all(isinstance(e, StateError) and "already idle" in str(e) for e in errors), errors
        assert pen.state is State.IDLE and sim.firmware.state is FirmwareState.IDLE
