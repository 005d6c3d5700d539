"""Ending a calibration run from outside it: the service's dead-man rule for `calibration.auto`.

`run_calibration(..., should_stop=...)` asks `should_stop()` before every move of the actuator,
before every speed check and before saving; a speed check that spins is watched on every report
the pen sends, in the thread that reads it, so the needle stops within a report of the cause
(`stop_spin()`), whatever the thread running the workflow is doing. A reason (a str) ends the
run there: the needle stopped, calibrating left, the report naming the reason, nothing saved or
installed. The last check comes before the save: a cause found after it (during the save)
does not undo the run, which is then saved and installed (`install`), the pen at rest.

`should_stop` must therefore be cheap, non-blocking and thread-safe (a flag or a lock-free read,
as the service's `driver_lost`): while a speed check spins it runs on the pen's reader thread,
and every reply and lease renewal waits for it. It runs there, not in a watcher thread, because
the workflow's thread is blocked in the spin and only the reader sees each report: a watcher
would stop the needle on its own wall-clock poll instead of within a report of the cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from smpdevice.control.calibration import CalibrationError
from smpdevice.control.states import SAFE, State, StateError
from smpdevice.errors import SmpError
from smpdevice.link.wire import LinkError

if TYPE_CHECKING:
    from smpdevice.calibration.report import CalibrationReport
    from smpdevice.control import PenController
    from smpdevice.control.calibration import Calibration

# Why the run must end now (None/False: go on). Called on the pen's reader thread during a
# spin: cheap, non-blocking, thread-safe (see the module doc).
StopReason = Callable[[], "str | bool | None"]


class RunStopped(CalibrationError):
    """The run was ended from outside (its driver was lost): nothing was saved."""


ENDED_OUTSIDE = ("the calibration was ended from outside the run (the controller left "
                 "`calibrating` for idle under it: the dead-man rule stopped the pen)")


class StopCheck:
    """`should_stop` as the workflow asks it; without one, every check passes. The first
    reason is kept: a run that must end stays ended (a driver back meanwhile changes nothing).
    With a `should_stop`, the controller found idle under the run is a reason too: only the
    run ends its own `calibrating`, so someone else did (the service's watchdog, on a loss
    that `should_stop` may no longer see by the next check)."""

    def __init__(self, should_stop: StopReason | None,
                 ctl: PenController | None = None) -> None:
        self._should_stop = should_stop
        self._ctl = ctl
        self._why: str | None = None

    def reason(self) -> str | None:
        if self._why is None and self._should_stop is not None:
            try:
                why: object = self._should_stop()
            except Exception as exc:  # a check that cannot answer ends the run: fail safe
                why = f"the run's stop check failed ({exc!r})"
            if not why and self._ctl is not None and self._ctl.state is State.IDLE:
                why = ENDED_OUTSIDE
            if why:  # None, False or "": go on (a session's bool should_stop works too)
                self._why = why if isinstance(why, str) else "the run was asked to stop"
        return self._why

    def check(self) -> None:
        """RunStopped if the run must end now (before the next thing it asks of the pen)."""
        why = self.reason()
        if why is not None:
            raise RunStopped(why)

    def ended_by(self, exc: BaseException) -> str | None:
        """Why the run ended from outside, if `exc` says so (RunStopped) or is an error of a
        step the cause cut short (the needle stopped under it); None: a failure of its own.
        Ask it before the run ends `calibrating` itself."""
        if isinstance(exc, RunStopped):
            return str(exc)
        return self.reason() if isinstance(exc, SmpError) else None

    @contextlib.contextmanager
    def watching_spin(self, ctl: PenController) -> Iterator[dict[str, Any]]:
        """Around one speed check: yields the `calibration_spin` keywords that let a cause
        found while it spins end it (its stop count, read before the watch begins)."""
        if self._should_stop is None:
            yield {}
            return
        self.check()
        stops = ctl.spin_stops
        stopped = [False]

        def on_report(_: Any) -> None:  # the reader thread: cheap reads, one stop_spin
            if not stopped[0] and self.reason() is not None:
                stopped[0] = True
                ctl.stop_spin()

        ctl.add_inline_telemetry_reader(on_report)
        try:
            yield {"stops_before": stops}
        finally:
            ctl.remove_inline_telemetry_reader(on_report)


def install(ctl: PenController, report: CalibrationReport, calibration: Calibration) -> None:
    """The run passed its last check before the save: it is committed, and what the store
    holds is installed. If its `calibrating` was ended from outside meanwhile (the service's
    dead-man rule during the save), the pen is at rest already: installed in idle instead
    (`set_calibration`, which moves nothing). A stop the pen did not confirm (a link fault:
    the controller latched a fault) is a problem in the report, not installed. Never a raw
    error here: the calibration is saved, and the report is the only account of it."""
    try:
        ctl.end_calibration(calibration)
        return
    except StateError:
        if ctl.state is not State.IDLE:
            report.problems.append(_not_installed(report, "the controller is "
                                                  f"{ctl.state.value}"))
            return
    except SmpError as exc:  # LinkError/LinkTimeout: the stop was not confirmed
        report.problems.append(_not_installed(report, f"the controller is {ctl.state.value}: "
                                              + str(exc).rstrip(".")))
        return
    try:
        ctl.set_calibration(calibration)
        report.installed_idle = True
    except SmpError as exc:
        report.problems.append(_not_installed(report, str(exc)))


def _not_installed(report: CalibrationReport, why: str) -> str:
    assert report.calibration is not None
    ident = report.calibration.calibration_id
    if report.saved:  # the store's newest: what `smp run` and the service take next
        return (f"calibration {ident} passed and was saved but was not installed: {why}. It "
                "is the newest: `smp run` takes it, and a service installs it once the pen is "
                "idle again")
    return f"calibration {ident} passed but was not installed: {why}. Calibrate again"


def pen_lost(ctl: PenController, exc: BaseException) -> str | None:
    """Why a step's error `exc` ended the run on the pen's side: a fault or an E-stop the pen
    latched (its needle stopped), or the link lost (the pen stops itself when its lease
    lapses); None for any other error (Ctrl-C, a bug, the technician's input ended), which is
    raised as it is. The state is read once: through a service (`RemotePen`) it is asked."""
    if not isinstance(exc, SmpError):
        return None
    state = ctl.state
    if state in SAFE:
        what = "an E-stop" if state is State.ESTOP else "a fault"
        return f"{ctl.last_fault or 'the pen latched ' + what}; the needle was stopped"
    if state is State.DISCONNECTED:
        return f"the link to the pen was lost ({ctl.last_fault or exc})"
    # a write that found the port gone: the loop names the loss a moment later (the pen's
    # lease retracts the needle by itself); the run's report says so, never a raw LinkError
    link = getattr(ctl, "link", None)  # (a service's RemotePen has none: it asks the state)
    if isinstance(exc, LinkError) and link is not None and link.lost is not None:
        return f"the link to the pen was lost ({link.lost})"
    return None


def leave_calibrating(ctl: PenController, calibration: Calibration | None) -> None:
    """Leave the calibrating state; an error here must not hide the one that got us here."""
    with contextlib.suppress(Exception):
        ctl.end_calibration(calibration)
