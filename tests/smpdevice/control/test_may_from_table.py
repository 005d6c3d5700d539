"""`_fire` asks whether a move applies from the machine's table (`SafetyMixin._may`), not through
the library's `may_<trigger>()` (20-30 us on an E-stop's path): the answer must be the library's
for every trigger in every state, arm's guards passing or not, and for a trigger it lacks."""

from types import SimpleNamespace

import pytest

from smpdevice.control.safety import SafetyMixin
from smpdevice.control.states import TRANSITIONS, State, build_machine


class _Model:
    def __init__(self, guards: bool) -> None:
        self.guards = guards

    def has_calibration(self) -> bool:
        return self.guards

    def has_zone(self) -> bool:
        return self.guards

    def has_setpoints(self) -> bool:
        return self.guards


@pytest.mark.parametrize("guards", [True, False])
def test_may_equals_the_library_in_every_state(guards: bool) -> None:
    model = _Model(guards)
    machine = build_machine(model)
    owner = SimpleNamespace(_machine=machine, _fsm=model)
    triggers = sorted({trigger for trigger, _, _ in TRANSITIONS})
    seen = set()
    for state in State:
        machine.set_state(state.value, model=model)
        for trigger in triggers:
            expected = getattr(model, f"may_{trigger}")()
            assert SafetyMixin._may(owner, trigger, state) is expected, (state, trigger)
            seen.add(expected)
    assert seen == {True, False}  # both answers were checked


def test_an_unknown_trigger_is_asked_of_the_library() -> None:
    model = _Model(True)
    owner = SimpleNamespace(_machine=build_machine(model), _fsm=model)
    with pytest.raises(AttributeError):
        SafetyMixin._may(owner, "no_such_trigger", State.IDLE)


def test_no_move_has_prepare_callbacks_that_may_would_skip() -> None:
    """The library runs a move's `prepare` callbacks before its conditions; `_may` reads the
    table only where a move has neither, so the machine must keep giving none."""
    machine = build_machine(_Model(True))
    moves = [move for event in machine.events.values()
             for group in event.transitions.values() for move in group]
    assert moves and not any(move.prepare for move in moves)
