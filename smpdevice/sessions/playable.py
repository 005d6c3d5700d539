"""A session's play bookkeeping: why it refuses a pass before anything is sent to the pen (it
is closed, suspended, or a pass of it already ended before its plan did: going on in the same
part would skip the checks a resume makes), what is left of its plan, and how a pass ended."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from smpdevice import checks
from smpdevice.checks import InvalidArgument
from smpdevice.control.states import State, StateError
from smpdevice.issues import escaped
from smpdevice.outcomes import command
from smpdevice.passlog import PassOutcome
from smpdevice.sessions.pass_counter import PassResult
from smpdevice.sessions.profiles import PlannedPass
from smpdevice.sessions.resume import pass_remainder

Remaining = list[tuple[int, PlannedPass]]  # (plan index, pass) still to play
LATCHED = (State.FAULT, State.ESTOP, State.DISCONNECTED)


def require_playable(session_id: str, ended: str | None, action: str) -> None:
    """Refuse (StateError) `action` in a session that is closed or suspended."""
    if ended == "closed":
        raise StateError(
            f"{action}() refused: session {session_id} is closed; nothing was sent "
            "to the pen. Open a new session (TreatmentSession.open) for more passes.")
    if ended == "suspended":
        raise StateError(
            f"{action}() refused: session {session_id} was suspended (left open in "
            "the log); nothing was sent to the pen. Resume it to play what is left: "
            + command("smp", "run", "--resume", session_id))


def why_cut_short(results: Sequence[PassResult], stop_requested: bool, pen_state: str) -> str:
    """Why a play() ended before its plan did, in a few words."""
    last = results[-1] if results else None
    if last is not None and last.outcome is not PassOutcome.completed:
        return f"its pass {last.index + 1} ended {last.outcome.value}"
    if stop_requested:
        return "a stop was asked"
    return f"it ended with the pen {pen_state}"


def cut_short_by(results: Sequence[PassResult], played: int, stop_requested: bool,
                 pen_state: State) -> str | None:
    """Why one run_pass() (which recorded `results[played:]`) ended the session part early:
    its pass did not complete, or none began because the pen latched; None otherwise."""
    last = results[-1] if len(results) > played else None
    early = pen_state in LATCHED if last is None else last.outcome is not PassOutcome.completed
    return why_cut_short(results[played:], stop_requested, pen_state.value) if early else None


def ended_while_arming(session_id: str, ended: str) -> StateError:
    """The session was closed or suspended from another thread while a pass was being set up:
    the pen was disarmed again and no pass was recorded."""
    return StateError(
        f"run_pass() refused: session {session_id} was {ended} from another thread while "
        "this pass was being set up; the pen was disarmed again and no pass was recorded.")


def require_not_cut_short(session_id: str, cut_short: str | None, action: str = "play") -> None:
    """Refuse a play() or run_pass() after a pass that ended early: it would go on in the same
    session part, past the checks a resume makes, and no replay could play it."""
    if cut_short is None:
        return
    raise StateError(
        f"{action}() refused: session {session_id} stopped before the end of its plan "
        f"({cut_short}); nothing was sent to the pen. To go on, suspend() it, clear the "
        "cause, then resume it (resume_session, or "
        + command("smp", "run", "--resume", session_id) + "), which checks calibration, "
        "envelope and screening again and records the resumption; or close() it.")


def plan_index(remaining: Remaining, plan_size: int, planned: PlannedPass, index: int | None,
               recorded: Callable[[], Sequence[int]]) -> int:
    """The index a pass played by hand (`run_pass`) is recorded under, decided before anything
    is sent. None: that of the first pass left (`remaining`) it equals (zone and target: a
    pass built anew counts as the plan's), else the next one past the plan (`recorded`: the
    indexes of the session's passes so far): a pass not of the plan never stands for one.
    An index of the plan must name a pass left whose what-is-left it equals (InvalidArgument:
    else a crown pass could be filed as the plan's top one, and the session close completed
    with its top never treated)."""
    if index is None:
        match = [i for i, left in remaining if left == planned]
        if match:
            return match[0]
        return max([plan_size - 1, *recorded()]) + 1
    index = checks.whole_number("index", index, 0, 1_000_000)
    if index >= plan_size:
        return index  # outside the plan, as asked: it takes nothing out of `remaining`
    left = [p for i, p in remaining if i == index]
    if not left:
        raise InvalidArgument(
            f"index={index}: pass {index + 1} of the plan is not left to play (completed: "
            "see session.remaining); nothing was sent to the pen. Give no index to record "
            "this pass as one outside the plan.")
    if left[0] != planned:
        raise InvalidArgument(
            f"index={index}: pass {index + 1} of the plan is {_said(left[0])} (what is left "
            f"of it: session.remaining), not {_said(planned)}; nothing was sent to the pen. "
            "Play that pass, or give no index (a pass of the plan it equals is found).")
    return index


def _said(planned: PlannedPass) -> str:
    target = (f"{planned.duration_s:g} s" if planned.duration_s is not None
              else f"{planned.impressions} impressions")
    return f"{escaped(planned.zone)[:40]} for {target}"


def left_after(remaining: Remaining, index: int, planned: PlannedPass, result: PassResult,
               period_ms: float) -> Remaining:
    """`remaining` without the pass played (its entry: the same plan index, an equal pass; a
    pass not in it, recorded past the plan, changes nothing): all of it when it completed,
    else what its dots made (a resume plays a pass that stopped early only for its
    remainder)."""
    at = [k for k, (i, p) in enumerate(remaining) if i == index and p == planned]
    if not at:
        return list(remaining)
    k = at[0]
    if result.outcome is PassOutcome.completed:
        return remaining[:k] + remaining[k + 1:]
    dots = max(int(result.stats.impressions), 0)
    rest = pass_remainder(planned, dots, dots * period_ms / 1000.0)
    kept = [] if rest is None else [(remaining[k][0], rest)]
    return remaining[:k] + kept + remaining[k + 1:]


def outcome_from_state(state: State, stopped_by_footswitch: bool) -> PassOutcome:
    """How a pass ended, from the pen's state once its needle stopped."""
    if state is State.ESTOP:
        return PassOutcome.estop
    if state is State.FAULT:
        return PassOutcome.fault
    if state in (State.DISCONNECTED, State.CONNECTING):  # a link lost and being made again
        return PassOutcome.link_lost  # (review 20: a reconnect at once judged `stopped`)
    if stopped_by_footswitch:
        return PassOutcome.footswitch_released
    return PassOutcome.stopped
