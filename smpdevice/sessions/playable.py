"""Why a session refuses a pass before anything is sent to the pen: it is closed, suspended,
or a play() of it already ended before its plan did (review 9a R02, review 10a R02)."""

from __future__ import annotations

from collections.abc import Sequence

from smpdevice.control.states import StateError
from smpdevice.outcomes import command
from smpdevice.passlog import PassOutcome
from smpdevice.sessions.pass_counter import PassResult


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


def require_not_cut_short(session_id: str, cut_short: str | None) -> None:
    """Refuse a second play() after one that ended early: it went on in the same session
    part, past the checks a resume makes, and no replay could play it (review 10a R02)."""
    if cut_short is None:
        return
    raise StateError(
        f"play() refused: session {session_id} stopped before the end of its plan "
        f"({cut_short}); nothing was sent to the pen. To go on, suspend() it, clear the "
        "cause, then resume it (resume_session, or "
        + command("smp", "run", "--resume", session_id) + "), which checks calibration, "
        "envelope and screening again and records the resumption; or close() it.")
