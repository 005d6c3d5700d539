"""How a session ended, and the exit status of every `smp` command: one table for both.

`smp run`, `examples/session_software.py` and any session software classify a session with
`classify_session`, and a command exits with `ExitCode`. README.md and docs/integration.md list
the same codes (a test checks that they list every one). A session that did not play every
planned pass is never reported as a success.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """The exit status of every `smp` command (and of examples/session_software.py)."""

    OK = 0  # done; for `smp run`: every planned pass completed
    CHECK_FAILED = 1  # a check said no: invalid file, broken chain, failed calibration, declined
    USER_ERROR = 2  # bad option, file, port or state; the message says what to do
    RECORD_ERROR = 3  # the pass log cannot be read or written (the needle was stopped first)
    FAULT = 4  # the session ended on a latched pen fault; `smp clear`: the cause is still there
    ESTOP = 5  # the session ended on an E-stop
    LINK_LOST = 6  # the host lost the pen (cable, power); the pen stopped by its own lease
    INCOMPLETE = 7  # the session ended early for another reason (e.g. the pass-time limit)
    INTERRUPTED = 130  # Ctrl-C (SIGINT), as shells report it: 128 + 2

    @property
    def meaning(self) -> str:
        return _MEANING[self]


_MEANING = {
    ExitCode.OK: "done; `smp run`: every planned pass completed",
    ExitCode.CHECK_FAILED: "a check failed: invalid profile or config file, broken hash chain, "
    "failed or aborted calibration, a confirmation declined",
    ExitCode.USER_ERROR: "a bad option, file, port or pen state; the message says what to do",
    ExitCode.RECORD_ERROR: "the pass log cannot be read or written (the needle was stopped first)",
    ExitCode.FAULT: "the session ended on a latched pen fault; `smp clear`: its cause is still "
    "present",
    ExitCode.ESTOP: "the session ended on an E-stop",
    ExitCode.LINK_LOST: "the pen was lost (cable, power) and stopped itself by its lease; "
    "`smp estop`: the pen could not be reached",
    ExitCode.INCOMPLETE: "the session ended early for another reason (e.g. the pass-time limit)",
    ExitCode.INTERRUPTED: "Ctrl-C: the needle was stopped and what ran was recorded",
}


class SessionOutcome(StrEnum):
    """How a whole session ended. Only `completed` means every planned pass completed."""

    completed = "completed"
    fault = "fault"
    estop = "estop"
    link_lost = "link_lost"
    interrupted = "interrupted"  # the technician stopped it (Ctrl-C, a stop request)
    log_error = "log_error"
    incomplete = "incomplete"  # ended early otherwise (the controller stopped a pass)

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT[self]

    @property
    def complete(self) -> bool:
        return self is SessionOutcome.completed

    @property
    def reason(self) -> str:
        return _REASON[self]


_EXIT = {
    SessionOutcome.completed: ExitCode.OK,
    SessionOutcome.fault: ExitCode.FAULT,
    SessionOutcome.estop: ExitCode.ESTOP,
    SessionOutcome.link_lost: ExitCode.LINK_LOST,
    SessionOutcome.interrupted: ExitCode.INTERRUPTED,
    SessionOutcome.log_error: ExitCode.RECORD_ERROR,
    SessionOutcome.incomplete: ExitCode.INCOMPLETE,
}
_REASON = {
    SessionOutcome.completed: "every planned pass completed",
    SessionOutcome.fault: "ended by a fault the pen latched",
    SessionOutcome.estop: "ended by an E-stop",
    SessionOutcome.link_lost: "ended because the pen was lost (cable, power)",
    SessionOutcome.interrupted: "stopped by the technician",
    SessionOutcome.log_error: "ended because the pass log could not be written",
    SessionOutcome.incomplete: "ended early (a pass was stopped by the controller)",
}
# A pass outcome (smpdevice.passlog.PassOutcome values) that ends a session early.
_FROM_PASS = {
    "fault": SessionOutcome.fault,
    "estop": SessionOutcome.estop,
    "link_lost": SessionOutcome.link_lost,
    "log_error": SessionOutcome.log_error,
    "controller_crashed": SessionOutcome.incomplete,
    "footswitch_released": SessionOutcome.interrupted,  # the technician lifted the pedal
}
_PASS_OUTCOMES = ("completed", "stopped", *_FROM_PASS)
# What classify_session takes: a pass's outcome, or `in_progress` (begun, not yet ended, as a
# session's summary names such a pass); any other text is refused (review 18e: 'Completed').
_TAKEN = (*_PASS_OUTCOMES, "in_progress")
MAX_PLANNED = 1_000_000  # a plan's passes (the envelope caps a session at 600): a sanity bound
# The controller's state (smpdevice.control.State values) when no pass says why.
_FROM_STATE = {
    "fault": SessionOutcome.fault,
    "estop": SessionOutcome.estop,
    "disconnected": SessionOutcome.link_lost,
}


def classify_session(
    pass_outcomes: Iterable[str],
    planned_passes: int,
    *,
    stop_requested: bool = False,
    pen_state: str | None = None,
    stopped_by: str | None = None,
) -> SessionOutcome:
    """The session's outcome from its passes' outcomes, in order, and what else is known.

    The first pass that did not complete says why the session ended; a pass `stopped` by the
    technician's request (`stop_requested`) is `interrupted`. With fewer passes than planned
    and none failed, the pen's state says why (a fault latched between passes), else
    `stopped_by` (the last pass's recorded outcome, when it was cut after its last dot and so
    counts as completed: a pedal release is `interrupted`), else `interrupted` or `incomplete`.
    """
    from smpdevice import checks  # here: the exit-code table imports nothing of ours

    checks.whole_number("planned_passes", planned_passes, 0, MAX_PLANNED)
    if stopped_by is not None and (not isinstance(stopped_by, str) or stopped_by not in _TAKEN):
        raise checks.InvalidArgument(
            f"stopped_by={stopped_by!r:.60} is refused: the last pass's recorded outcome is one "
            f"of these texts ({', '.join(_TAKEN)}), or None")
    if isinstance(pass_outcomes, str | bytes) or not isinstance(pass_outcomes, Iterable):
        raise checks.InvalidArgument(
            f"pass_outcomes={pass_outcomes!r:.60} is refused: give the passes' outcomes in "
            "order, as a list of texts (['completed', 'fault']), not one text")
    outcomes = list(pass_outcomes)
    for index, outcome in enumerate(outcomes):
        if not isinstance(outcome, str) or outcome not in _TAKEN:  # 'Completed' too
            raise checks.InvalidArgument(
                f"pass_outcomes[{index}]={outcome!r:.60} is refused: each pass's outcome is one "
                f"of these texts ({', '.join(_TAKEN)})")
    for outcome in outcomes:
        if outcome == "completed":
            continue
        if outcome in _FROM_PASS:
            return _FROM_PASS[outcome]
        return SessionOutcome.interrupted if stop_requested else SessionOutcome.incomplete
    if len(outcomes) >= planned_passes:
        return SessionOutcome.completed
    if pen_state is not None and str(pen_state) in _FROM_STATE:
        return _FROM_STATE[str(pen_state)]
    return stopped_for(
        SessionOutcome.interrupted if stop_requested else SessionOutcome.incomplete, stopped_by)


def stopped_for(outcome: SessionOutcome, stopped_by: str | None) -> SessionOutcome:
    """`outcome`, or, when it is `incomplete` (passes left, none failed, no latch), why the
    session stopped as the last pass's recorded outcome `stopped_by` says: a pass cut after
    its last dot counts as completed (README "Resuming"), yet what cut it ended the run
    (`footswitch_released`: `interrupted`, exit 130, review 19)."""
    if outcome is not SessionOutcome.incomplete or stopped_by is None:
        return outcome
    return _FROM_PASS.get(stopped_by, outcome)


def command(*words: str) -> str:
    """A command line that can be copy-pasted into a shell (each word quoted when needed)."""
    return " ".join(shlex.quote(str(w)) for w in words)


def calibrate_command(port: str) -> str:
    """How to calibrate the pen on `port`: automatic on the in-process simulator."""
    words = ["smp", "calibrate", "--port", port]
    if port.startswith("pensim://"):
        words.append("--auto")
    return command(*words)


def next_steps(
    outcome: SessionOutcome,
    *,
    port: str,
    session_id: str,
    remaining_passes: int,
    service: str | None = None,
) -> list[str]:
    """What the technician does next, as lines with commands that can be copy-pasted
    (addressing the pen through `smp serve` at `service` when one drove the session)."""
    from smpdevice import checks  # here: the exit-code table imports nothing of ours

    try:  # the outcome as text too, as `smp sessions show --json` gives it
        outcome = SessionOutcome(outcome)
    except ValueError:
        raise checks.InvalidArgument(
            f"outcome={outcome!r:.60} is refused: give a SessionOutcome or its text "
            f"({', '.join(o.value for o in SessionOutcome)})") from None
    if service is not None:
        checks.text("service", service, max_len=300)
    else:  # the commands name it: never "--port None"
        checks.text("port", port, max_len=300)
    checks.text("session_id", session_id, max_len=200)
    checks.whole_number("remaining_passes", remaining_passes, 0, MAX_PLANNED)  # not played
    steps: list[str] = []
    pen = ["--service", service] if service else ["--port", port]
    if outcome is SessionOutcome.fault:
        steps.append("Find and remove the cause (jam, cartridge, heat), then clear the fault: "
                     + command("smp", "clear", *pen))
    elif outcome is SessionOutcome.estop:
        steps.append("When it is safe, release the E-stop: " + command("smp", "clear", *pen))
    elif outcome is SessionOutcome.link_lost:
        steps.append("Check the cable and the pen's power, then check the pen: "
                     + command("smp", "info", *pen))
    elif outcome is SessionOutcome.log_error:
        steps.append("Check the data directory (disk full, permissions), then the log: "
                     + command("smp", "sessions", "verify"))
    if remaining_passes > 0:
        steps.append(f"{remaining_passes} planned pass(es) were not played: arrange with the "
                     "client to complete the session later.")
    steps.append("What was done is recorded: " + command("smp", "sessions", "show", session_id))
    return steps
