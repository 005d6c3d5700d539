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


@pytest.mark.parametrize("guards", [True, False])
def test_move_lands_where_the_library_lands_in_every_state(guards: bool) -> None:
    """`_move` sets the table's destination instead of running the library's trigger (an
    E-stop's latch, 60 calls less): the same state after every move `_may` allows, and no
    callback the library would have run is skipped (the machine gives none)."""
    triggers = sorted({trigger for trigger, _, _ in TRANSITIONS})
    for state in State:
        for trigger in triggers:
            library, table = _Model(guards), _Model(guards)
            lib_machine, table_machine = build_machine(library), build_machine(table)
            lib_machine.set_state(state.value, model=library)
            table_machine.set_state(state.value, model=table)
            owner = SimpleNamespace(_machine=table_machine, _fsm=table)
            if not SafetyMixin._may(owner, trigger, state):
                continue
            getattr(library, trigger)()
            SafetyMixin._move(owner, trigger, state)
            assert table.state == library.state, (state, trigger)
    machine = build_machine(_Model(guards))
    moves = [move for event in machine.events.values()
             for group in event.transitions.values() for move in group]
    assert not any(move.before or move.after for move in moves)
    assert not any(s.on_enter or s.on_exit for s in machine.states.values())
    assert not (machine.before_state_change or machine.after_state_change
                or machine.prepare_event or machine.finalize_event or machine.on_exception)
