"""A pass planned in impressions (a mixin of `PenController`): the controller ends it at its
count when its caller (a session's thread) has not, by the pen's reports or by its time (one
impression per period), whichever comes first: slow telemetry (1 Hz) never lets it run on
(review 16 b16e: 2 planned made 11)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from firmware_protocol.codes import FirmwareState
from firmware_protocol.messages import NeedleStart
from smpdevice import checks
from smpdevice.control.core import ControllerCore
from smpdevice.control.pen import PenTelemetry
from smpdevice.control.states import State

# A pass given its planned length (`start_needle(run_for_s=...)`) is stopped here that much
# after it, when its caller has not stopped it: the session's own stop, which polls every
# 20 ms, comes first whenever its thread runs.
PLANNED_END_GRACE_S = 0.1


def _nothing() -> None:
    """Posted to wake the loop: its timers (on_tick) run after every item."""


def impressions_time_s(impressions: int, period_s: float) -> float:
    """How long after its start was confirmed (the pen began it earlier) a pass has made
    `impressions`, one per period, the first at the start: the next begins then, so it is
    stopped within a quarter period (the stop travels meanwhile: one more at most)."""
    return impressions * period_s + min(PLANNED_END_GRACE_S, period_s / 4)


class ImpressionsPlanMixin(ControllerCore):
    """end_pass_after, and the loop's judgement of its end; which start is a recorded pass."""

    # Where needle work outside a recorded pass is noted (`control.needle_work`); None: the
    # data directory. A service sets its own (`service.runner.build`).
    needle_work_dir: Path | None = None
    _state_fired: int  # state changes made so far (controller.py `_fire`)

    def _recorded_pass_next(self, pass_id: str) -> None:
        """`TreatmentSession` only, the pen armed: its next start is pass `pass_id`, whose
        begin record is in its pass log, so that start writes no needle_work line. Said by
        nothing public (review 18 b18g: `end_pass_after` is, and a bare start planned with it
        was taken for a pass). Dropped by any change of state (out of ARMED: disarm, retract,
        fault, E-stop), by any stop asked, and by the next start."""
        if pass_id and self.state is State.ARMED:
            self.__dict__["_recorded_pass"] = (pass_id, self._state_fired, self._stop_epoch)

    def _take_recorded_pass(self) -> str | None:
        """start_needle: the recorded pass its start is, or None (needle work outside one)."""
        mark = self.__dict__.pop("_recorded_pass", None)
        if (mark is None or self.state is not State.ARMED
                or mark[1:] != (self._state_fired, self._stop_epoch)):
            return None
        return str(mark[0])

    def end_pass_after(self, impressions: int | None, counted_from: int | None = None) -> None:
        """The next pass (the next `start_needle`) is planned to make `impressions` (None: it
        is not planned so), counted by the pen from `counted_from` (the count before it
        starts; None: the count of the pen's first report after every request so far, so a
        report from before the last stop never passes the last pass's impressions to this
        one). When its caller has not stopped it there (a session's thread held up), the
        controller stops it as at its planned end (`stopped_at_planned_end`):
        PLANNED_END_GRACE_S after the pen reported them, or once it has run their time
        (`impressions_time_s`), whichever comes first. max_pass_s stays the limit. One pass
        only: a stop asked before it starts, or the pass's end, drops it."""
        if impressions is not None:
            impressions = checks.whole_number("impressions", impressions, 1, 10_000_000)
        if impressions is None:
            self.__dict__["_impressions_plan"] = None
            return
        # the count it starts from: a list the reader thread fills once (one append, never
        # half set); left empty (no report came before the start), it ends on time only
        base: list[int] = []
        t, engine = self.telemetry, self._engine
        if counted_from is not None:
            base.append(counted_from)
        elif t is not None and (engine is None or engine.settled(t.received_at_s)):
            base.append(t.impressions)
        after_s = engine.ops_done_s if engine is not None else 0.0
        # swapped whole: the loop reads it on every tick (one tuple, never half set)
        self.__dict__["_impressions_plan"] = (impressions, base, after_s, self._stop_epoch,
                                              None, None, None)

    def _impressions_base(self, t: PenTelemetry) -> None:
        """Reader thread: a report received after every request made before the plan, the
        pen still armed, gives the pass's base; once per plan."""
        plan = self.__dict__.get("_impressions_plan")
        if (plan is not None and not plan[1] and t.received_at_s > plan[2]
                and t.state is FirmwareState.ARMED):
            plan[1].append(t.impressions)

    def _impressions_reached(self, now_s: float) -> bool:
        """Loop thread, while running: the pass planned in impressions made them at least
        PLANNED_END_GRACE_S ago, or ran their time. The grace, as a timed pass's, leaves the
        stop to its caller unless held up: two stops racing would make what the host sends
        (and so a replay of it) depend on which thread ran first."""
        plan = self.__dict__.get("_impressions_plan")
        if plan is None:
            return False
        impressions, base, after_s, epoch, since, reached_s, period_s = plan
        if since is None and epoch == self._stop_epoch:  # the pass it was planned for began
            since = self.running_since_s
        if since is None or since != self.running_since_s:  # another pass: not its plan
            self.__dict__["_impressions_plan"] = None
            return False
        sp = self.setpoints  # a shorter period set meanwhile ends it sooner, never later
        if sp is not None and (period_s is None or sp.period_ms / 1000 < period_s):
            period_s = sp.period_ms / 1000
            self._wake_loop_at(since + impressions_time_s(impressions, period_s))
        if (since, period_s) != plan[4:5] + plan[6:]:
            plan = (impressions, base, after_s, epoch, since, reached_s, period_s)
            self.__dict__["_impressions_plan"] = plan
        if period_s is not None and now_s - since >= impressions_time_s(impressions, period_s):
            return True
        t = self.telemetry
        if not base or t is None or (t.impressions - base[0]) % 2**32 < impressions:
            return False
        if reached_s is None:
            self.__dict__["_impressions_plan"] = (*plan[:5], now_s, period_s)
            return False
        return now_s - reached_s >= PLANNED_END_GRACE_S

    def _report_wait_s(self, at_least_s: float) -> float:
        """How long to wait for a report: `at_least_s`, or a report period and a half when
        the pen reports slower."""
        engine = self._engine
        rate_hz = (engine.telemetry_hz if engine is not None else 0) or self.telemetry_hz
        return max(at_least_s, 1.5 / max(1, rate_hz))

    def _report_of_counters(self) -> PenTelemetry | None:
        """The pen's last report if its counters are the pen's now: received after every
        request that could change the pen's state, or showing the needle at rest and received
        after the last request with a NEEDLE_START (the needle can have run since only by a
        start); else None (it may miss the needle's last dots before a stop)."""
        t, rx_no = self._report
        engine = self._engine
        if t is None or engine is None or rx_no > engine.ops_done_rx:
            return t
        at_rest = t.state is not FirmwareState.RUNNING and rx_no > engine.starts_done_rx
        if at_rest and not any(isinstance(m, NeedleStart) for op in engine.ops for m in op.steps):
            return t
        return None

    def _wake_loop_at(self, at_s: float) -> None:
        """On a virtual clock the loop runs its timers only when due (the lease's renewals,
        every lease/4): have it run them at `at_s` too. On wall time it runs them at least
        every IDLE_TICK_S (50 ms) anyway."""
        engine = self._engine
        timebase: Any = getattr(engine, "timebase", None)
        if engine is None or timebase is None or not timebase.virtual:
            return

        def hook(now_s: float) -> None:  # in the advancing thread: one compare per step
            if now_s >= at_s:
                timebase.remove_advance_hook(hook)
                engine.post(_nothing)

        timebase.add_advance_hook(hook)

    def _drop_ended_impressions_plan(self) -> None:
        """Loop thread, not running: a plan whose pass began has ended with it."""
        plan = self.__dict__.get("_impressions_plan")
        if plan is not None and plan[4] is not None:
            self.__dict__["_impressions_plan"] = None  # its pass ended: never the next one's
