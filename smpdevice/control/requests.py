"""The requests the engine carries out for `PenController`, each checked against `POLICY`
first (a mixin; every `_do_*` runs in the loop thread and returns an `Operation` or a value)."""

from __future__ import annotations

import logging
import math
from datetime import datetime

from firmware_protocol import Message
from firmware_protocol.codes import Fault, LimitField, NackReason
from firmware_protocol.messages import (
    Arm,
    ClearFaults,
    Disarm,
    LeaseRenew,
    Nack,
    NeedleStart,
    NeedleStop,
    Retract,
    SetTelemetryRate,
)
from smpdevice.control.calibrating import SETTLE_TOLERANCE_MM
from smpdevice.control.calibration import (
    Calibration,
    CalibrationError,
    require_calibration,
)
from smpdevice.control.core import ControllerCore
from smpdevice.control.pen import Setpoints
from smpdevice.control.states import (
    OFFLINE,
    POLICY,
    SAFE,
    FaultInfo,
    HandshakeError,
    Latched,
    StartOvertaken,
    State,
    StateError,
)
from smpdevice.control.wire_units import (
    bump,
    generation,
    note_wire,
    require_current,
    resend,
    rewired,
    starting,
    wire_setpoints,
)
from smpdevice.control.zones import require_within_caps
from smpdevice.envelope import (
    EnvelopeError,
    ZoneEnvelope,
    check_setpoints,
    strokes_per_impression,
)
from smpdevice.errors import SmpError
from smpdevice.link.engine import Operation
from smpdevice.link.wire import CommandRefused

# asked for every setpoint, with the machine's state name (a State is its name, a StrEnum)
_SETPOINT_STATES = POLICY["set_setpoints"][0]


def inside(zone: ZoneEnvelope, sp: Setpoints) -> bool:
    """True only where `check_setpoints` finds nothing wrong, at a fraction of its cost (it
    formats each limit's message before it compares): the same comparisons on the same finite
    floats. Anything else (an int, NaN, infinity, a violation) takes the full check."""
    d, s, du, p = sp.depth_mm, sp.speed_hz, sp.duty_pct, sp.period_ms
    return (type(d) is float and type(s) is float and type(du) is float and type(p) is float
            and math.isfinite(d) and math.isfinite(s) and math.isfinite(du)
            and math.isfinite(p)
            and zone.epidermal_floor_mm <= d <= zone.dermal_ceiling_mm
            and zone.speed_min_hz <= s <= zone.speed_max_hz
            and zone.duty_min_pct <= du <= zone.duty_max_pct
            and zone.period_min_ms <= p <= zone.period_max_ms
            and strokes_per_impression(s, du, p) <= zone.max_strokes_per_impression)


class RequestsMixin(ControllerCore):
    """set_calibration / set_zone / set_setpoints / arm / start / stop / retract / clear."""

    # Stops (and retracts) asked so far, counted under the engine's lock: a start that began
    # before the latest one never goes out (it waited for the depth outside that lock, R09).
    _stop_epoch: int = 0
    run_for_s: float | None = None
    stopped_at_planned_end: datetime | None = None
    # The pen rebooted since the handshake (news.py, safety.py): it reports at its boot
    # default rate now (0 = off), so its clear asks the handshake's rate again (review 20)
    _pen_rebooted: bool = False

    @property
    def stops_asked(self) -> int:
        """Stops and retracts asked so far (any thread), E-stops, faults and lost links
        entered too: read it when deciding a start, and give it to
        `start_needle(unless_stopped_since=...)` so any of them since wins."""
        return self._stop_epoch

    def nack_error(self, step: Message, nack: Nack) -> SmpError:
        if nack.reason not in NackReason._value2member_map_:  # a pen outside the catalogue
            return HandshakeError(f"the pen refused {step.TYPE.name} with reason code "
                                  f"{nack.reason}, which this host's message catalogue does not "
                                  "define: check the pen's firmware.")
        reason = NackReason(nack.reason)
        err = CommandRefused(step.TYPE, reason, nack.detail)
        if reason is NackReason.OUT_OF_LIMITS and nack.detail in LimitField._value2member_map_:
            err.args = (f"{err} — field {LimitField(nack.detail).description}",)
        if reason is NackReason.CONDITION_ACTIVE and self.telemetry:
            err.args = (f"{err}; still active: {', '.join(self.telemetry.faults.names)}",)
        if reason is NackReason.BOOTING and self.state not in SAFE | OFFLINE:
            # a session's request (not the handshake's, which waits BOOTING out): a reboot
            self._latch_reboot(f"the pen refused {step.TYPE.name}: {reason.name} "
                               f"({reason.description})")
            return err
        latched = {NackReason.FAULT_LATCHED: "fault_detected",
                   NackReason.ESTOP_LATCHED: "estop_latched"}
        if reason in latched and self.state not in SAFE | OFFLINE:
            # the pen says it has latched, before any report of it did: believe it (review r04)
            faults = self.telemetry.faults if self.telemetry is not None else Fault(0)
            self.last_fault = FaultInfo(f"the pen refused {step.TYPE.name}: {reason.name}",
                                        faults)
            self._enter_safe(latched[reason])
        return err

    def _require(self, action: str) -> None:
        states, what = POLICY[action]
        if self.state not in states:
            allowed = " or ".join(s.value for s in State if s in states)
            if self.state in SAFE:  # copyable: its clear names this pen's port; a service
                # rewords it to `--service URL` (StateError.reached_by)
                raise Latched(what, self.state, self.last_fault, allowed).error(
                    ("--port", self.port_url))
            raise StateError(f"cannot {what} while {self.state.value}; needs {allowed}")

    def _do_set_calibration(self, calibration: Calibration | None) -> None:
        self._require("set_calibration")
        require_calibration(calibration, self._ident.serial,  # None: says how to make one
                            simulated_pen=self.simulated, port=self.port_url,
                            now=self.validity_now())
        self._calibration = calibration
        self._forget_setpoints()  # actuator commands from the old calibration are stale
        bump(self)  # and so are those still on their way (wire_units.require_current)
        self._rebound_zone()  # the depth window depends on the calibration (guard.py)

    def pen_limits(self) -> dict[str, tuple[float, float]]:
        """What this pen can do, in setpoint units: depth in skin (through the calibration,
        when there is one), speed, duty and period. The envelope is narrowed to these."""
        lim = self._ident.limits
        bounds: dict[str, tuple[float, float]] = {
            "speed_hz": (lim.speed_min_hz, lim.speed_max_hz),
            "duty_pct": (lim.duty_min_pct, lim.duty_max_pct),
            "period_ms": (lim.period_min_ms, lim.period_max_ms),
        }
        if self._calibration is not None:
            a, b = (self._calibration.to_depth_mm(lim.depth_min_mm),
                    self._calibration.to_depth_mm(lim.depth_max_mm))
            bounds["depth_mm"] = (min(a, b), max(a, b))
        return bounds

    def _do_set_zone(self, name: str) -> ZoneEnvelope | Operation:
        self._require("set_zone")
        if name not in self.zones:
            raise EnvelopeError.unknown_zone(name, sorted(self.zones))
        if starting(self):  # the pen may run already: as while running (review 16)
            raise StateError("cannot change zone while an arm or a needle start is on its "
                             "way to the pen (it may run already); stop (or disarm) first, "
                             "then change it")
        zone = self._pen_bounded(self.zones[name])
        self._require_fits_client(name, zone)  # guard.py: a client's floor past its ceiling
        if self.setpoints is not None:
            sp = self.setpoints
            violations = check_setpoints(zone, depth_mm=sp.depth_mm, speed_hz=sp.speed_hz,
                                         duty_pct=sp.duty_pct, period_ms=sp.period_ms)
            if violations and self.state is State.ARMED:
                raise EnvelopeError(name, violations)
            if violations:
                self.setpoints = None
        message = rewired(self, name, zone)  # the integers the pen holds must fit it too
        self.zone_name, self._zone = name, zone
        bump(self)  # setpoints on their way were checked against the old zone
        self._log = self._log.bind(zone=name)
        return zone if message is None else resend(self, message, lambda: zone)

    def _do_set_setpoints(self, sp: Setpoints) -> Operation:
        if self._fsm.state not in _SETPOINT_STATES:  # the policy's test, without two calls
            self._require("set_setpoints")  # refuses, saying why
        if self._zone is None:
            raise StateError("choose a zone first (set_zone); its envelope limits every setpoint")
        calibration = self._valid_calibration()
        if not inside(self._zone, sp):  # the full check names every violation
            violations = check_setpoints(self._zone, depth_mm=sp.depth_mm,
                                         speed_hz=sp.speed_hz, duty_pct=sp.duty_pct,
                                         period_ms=sp.period_ms)
            if violations:
                no_depth = self._no_depth_blocker()  # guard.py: a zone that allows no depth
                raise EnvelopeError(self.zone_name or "?", violations, None if no_depth is None
                                    else f"{'; '.join(map(str, violations))}: {no_depth}.")
        require_within_caps(self.zone_name or "?", sp.__dict__)  # zones.py: the last guard
        # rounded to the wire's units toward the inside at a limit: what the pen runs is
        # checked too, read back from the integers (guard.py)
        message = wire_setpoints(self._zone, calibration.to_depth_mm,
                                 calibration.to_actuator_mm, sp)
        if isinstance(message, list):  # a window narrower than one unit of the wire
            raise EnvelopeError(self.zone_name or "?", message, (
                f"{'; '.join(map(str, message))}, as rounded to the wire's units: no value the "
                f"pen can be sent fits the '{self.zone_name}' zone here. Nothing was sent: ask "
                "a value further inside the zone."))
        computed_under = generation(self)

        def done() -> Setpoints:
            require_current(self, computed_under)  # the zone or calibration changed meanwhile
            self.setpoints = sp
            note_wire(self, message)  # what a change of zone or floor checks again
            log = self._log  # filtered out (our loggers tell): no dict of fields for nothing
            enabled = getattr(log, "is_enabled_for", None)  # a user's own loggers may not
            if enabled is None or enabled(logging.INFO):
                log.info("setpoints", **sp.__dict__)
            return sp

        return Operation([message], done)

    def _valid_calibration(self) -> Calibration:
        """`require_calibration` for this pen at `validity_now()`, before every setpoint: the
        calibration as it is now, each time (test_lat13_fast_checks holds it so)."""
        return require_calibration(self._calibration, self._ident.serial,
                                   simulated_pen=self.simulated, port=self.port_url,
                                   now=self.validity_now())

    def _arm_blockers(self, only: str | None = None) -> list[str]:
        """Why arming is not allowed now (empty if it is)."""
        out: list[str] = []
        if only in (None, "calibration"):
            try:
                require_calibration(self._calibration, self._ident.serial,
                                    simulated_pen=self.simulated, port=self.port_url,
                                    now=self.validity_now())
            except CalibrationError as exc:
                out.append(str(exc))
        if only in (None, "zone") and self._zone is None:
            out.append("no zone chosen: call set_zone() first")
        elif only in (None, "zone") and (no_depth := self._no_depth_blocker()) is not None:
            out.append(no_depth)
        if only in (None, "setpoints") and self.setpoints is None:
            out.append("no setpoints: call set_setpoints() first")
        return out

    def _do_arm(self) -> Operation:
        self._require("arm")
        blockers = self._arm_blockers()
        if blockers or not self._fsm.may_arm():
            raise StateError("cannot arm: " + "; ".join(blockers))
        self._grant_lease()
        return Operation([*self._footswitch_steps(), LeaseRenew(self.lease_ms), Arm()],
                         self._armed)

    def _armed(self) -> None:
        """The pen armed: so is the controller, unless a guard lapsed meanwhile (the
        calibration expired as the ARM went out): then the pen is told back to idle at once,
        as the controller is, rather than left armed until its lease runs out (review 12)."""
        try:
            self._fire("arm", "armed")
        except StateError:
            if self.state is State.IDLE:
                self._lease_hold.set()
                self._eng.submit(Operation([Disarm()]))  # under the engine's lock: in order
            raise

    def _grant_lease(self) -> None:
        """A new, explicit grant of the lease (arm, a calibration spin): renewals may resume,
        unless a stop is still on its way: its hold stays until the pen confirms it."""
        engine = self._eng
        engine.next_lease_s = 0.0
        if not any(op.stop for op in engine.ops):
            self._lease_hold.clear()

    def _wait_depth_settled(self, timeout_s: float, stops_before: int) -> None:
        target_mm = self._actuator_cmd_mm

        def settled() -> bool:
            # a report from after the arm: one from before a disarm still shows the needle at
            # depth while the pen was retracting it (review 22)
            t = self._report_after_requests()
            return (t is not None and target_mm is not None
                    and abs(t.actuator_cmd_mm - target_mm) < 0.0005  # the pen has the command
                    and abs(t.actuator_mm - target_mm) <= SETTLE_TOLERANCE_MM)

        def stop_asked() -> bool:  # then _do_start refuses at once: do not wait the settle out
            return self._stop_epoch != stops_before

        if not self._wait_news(lambda: settled() or stop_asked() or self.state in SAFE | OFFLINE,
                               timeout_s):
            t = self.telemetry
            where = f"{t.actuator_mm:.3f} mm" if t else "unknown"
            raise SmpError(
                f"the depth actuator did not reach {target_mm} mm within {timeout_s} s "
                f"(it is at {where}); the needle was not started. Check the pen."
            )
        self._raise_if_faulted()

    def _do_start(self, stops_before: int | None = None, run_for_s: float | None = None,
                  zone: str | None = None) -> Operation:
        if stops_before is not None and stops_before != self._stop_epoch:
            raise StartOvertaken(
                "the needle was not started: a stop was asked (or an E-stop, a fault or a "
                "lost link came) after the start was decided, and none is ever withdrawn, "
                "cleared since or not. Call start_needle() again to start.")
        self._require("start")
        if zone is not None and zone != self.zone_name:  # set_zone from another caller since
            raise StateError(
                f"the needle was not started: it was decided for the zone {zone!r:.70}, and "
                f"the zone is now {self.zone_name!r:.70} (changed by another caller since); a "
                "needle never runs in a zone it was not set up for. Set the zone and its "
                "setpoints again, then start.")
        lapsed = self._arm_blockers(only="calibration")
        if lapsed:  # the calibration that armed it expired since (a session lasts hours)
            raise StateError("cannot start the needle: " + lapsed[0])
        if self.setpoints is None:  # checked again here, in turn: a zone, floor or
            # calibration change since the caller's check leaves none in force (review 16)
            raise StateError("cannot start the needle: no setpoints in force (a retract, "
                             "fault, calibration or a change of zone while they were on their "
                             "way forgot them): call set_setpoints() first")

        def started() -> None:
            self.running_since_s = self.clock.now()
            self.run_for_s, self.stopped_at_planned_end = run_for_s, None
            self.stopped_by_footswitch = False
            self._fire("start", "needle started")

        return Operation([LeaseRenew(self.lease_ms), NeedleStart()], started)

    def _ask_stop(self) -> None:
        """A stop was asked: every start still on its way (a needle start waiting for the
        depth, a calibration spin or move queued behind) loses at its turn. Any thread."""
        with self._fsm_lock:  # a bump from outside the engine's lock is never lost
            self._stop_epoch += 1
        self._announce()  # a start waiting for the depth hears of it now

    def _do_stop(self) -> Operation:
        self._ask_stop()  # first: any start still on its way loses (even if this refuses)
        self._require("stop")
        self._lease_hold.set()  # renew nothing until the pen confirms the stop

        def stopped() -> None:
            self.running_since_s = None
            with self._fsm_lock:
                if self.state is State.RUNNING:
                    self._fire("stop", "needle stopped")
                if self.state is State.ARMED:
                    self._lease_hold.clear()  # armed needs a live lease again

        return Operation([NeedleStop()], stopped, stop=True)

    def _do_retract(self) -> Operation:
        self._ask_stop()  # a retract stops the needle too: a pending start loses
        self._require("retract")

        def retracted() -> None:
            self._forget_setpoints()
            if self.state is State.RUNNING:
                self.running_since_s = None
                self._fire("stop", "retracted")

        return Operation([Retract()], retracted)

    def _do_simple(self, trigger: str, steps: list[Message]) -> Operation:
        self._require(trigger)
        return Operation(steps, lambda: self._fire(trigger, trigger))

    def _do_clear(self) -> Operation:
        self._require("clear_faults")
        if self.estop_unconfirmed:
            # its ESTOP is still (re-)sent: one written after this clear would latch the pen
            # again behind a controller that said idle, and one never delivered leaves the pen
            # as it was while a technician is told it was stopped and cleared
            raise StateError("cannot clear the E-stop yet: the pen has not confirmed it (it is "
                             "still being sent). Clear it once the pen confirms. If it never "
                             "does, what the host sends is not reaching the pen: do not treat "
                             "with it; close the connection (stop `smp serve` for a service), "
                             "check the cable and the pen, then connect again")

        def cleared() -> None:
            self._log.info("faults cleared", previous=str(self.last_fault))
            self.last_fault = None
            self._fire("cleared", "cleared by request")
            self._estop_hold = False  # the technician's explicit reset ends the E-stop
            self._eng.cancel_estop()
            self._pen_rebooted = False

        # then the rate: the controller stays latched until both are done, so a clear never
        # leaves a pen reporting blind (and a refused clear is named as CLEAR_FAULTS's)
        rate = [SetTelemetryRate(self._eng.telemetry_hz)] if self._pen_rebooted else []
        return Operation([ClearFaults(), *rate], cleared)

    def _do_request(self, message: Message) -> Operation:
        return Operation([message])
