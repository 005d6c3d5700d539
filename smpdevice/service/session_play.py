"""Playing a service session once it is open, and saying how it ended: `session.progress`
while it plays, `session.pass` for each pass and `session.result`, its stop when its driving
client is lost, and its close (or, asked with `leave_open`, leaving it open to be resumed).
A base of `SessionWork` (work.py), which re-exports `PROGRESS_EVERY_S`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.errors import SmpError
from smpdevice.outcomes import SessionOutcome
from smpdevice.records.model import PassLogError

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")
PROGRESS_EVERY_S = 0.2


class SessionPlay:
    """_play / _finish; what SessionWork sets up in its __init__ is declared here."""

    service: PenService
    _lock: threading.Lock
    _stop: threading.Event
    _stop_asked: threading.Event
    _driver_lost: threading.Event
    _stop_cause: str | None
    _leave_open: bool
    _status: dict[str, Any] | None

    def _play(self, session: Any, sid: str, client_id: str, epoch: int,
              out: dict[str, Any]) -> None:
        """Play under `epoch`, the claim the request was made under (launch checked it): a
        claim lost since, even one its connection took again, plays nothing (driver lost)."""
        service = self.service
        last = [0.0]

        def driver_lost() -> bool:
            return service.lease.holder() != client_id or service.lease.epoch != epoch

        if driver_lost():  # between its first record and now: ended as for a lost driver
            log.warning("session not played: its driver lost the claim it was started under",
                        session_id=sid, cause=f"driver lost: {client_id}")

        def should_stop() -> bool:
            if driver_lost():
                self._driver_lost.set()  # gone (or another took over) without a session.stop
                return True
            return self._stop.is_set()

        # a pass its driver's loss stopped (here, or the dead-man first) names it, as the
        # local path names Ctrl-C or the pedal; never "stop requested" (the technician's ask)
        # The service's own stop (shutting down, an E-stop) names itself first: the driver it
        # drops on the way out is not the cause.
        session.stop_cause = lambda: (self._stop_cause or (
            f"driver lost: {client_id}" if driver_lost() and not self._stop_asked.is_set()
            else None))

        told = [0]  # the passes said in session.pass so far

        def tell_passes() -> None:  # each as it ends (the next pass's first progress says so)
            for r in session.results[told[0]:]:
                told[0] += 1
                service.broadcast_threadsafe("session.pass", {
                    "session_id": sid, "index": r.index, "zone": r.zone,
                    "outcome": r.outcome.value, "detail": r.detail, "stats": asdict(r.stats)})

        def on_progress(pr: Any) -> None:
            tell_passes()
            now = time.monotonic()
            if now - last[0] < PROGRESS_EVERY_S:
                return
            last[0] = now
            service.broadcast_threadsafe("session.progress", {
                "session_id": sid, "index": pr.index, "total": pr.total, "zone": pr.zone,
                "elapsed_s": round(pr.elapsed_s, 3), "target_s": pr.target_s,
                "fraction": round(pr.fraction, 4), "strokes": pr.strokes,
                "impressions": pr.impressions})

        error: str | None = None
        log_failed = False  # the pass log could not be written: no close (a pass may be open)
        unanchored = False  # closed in the log, its receipt not anchored (a log error too)
        try:
            session.play(on_progress=on_progress, should_stop=should_stop)
        except PassLogError as exc:  # the needle was stopped first (TreatmentSession)
            error, log_failed = str(exc), True
        except SmpError as exc:
            error = str(exc)
        finally:
            # A session thread slower than SELF_STOP_S (a loaded PC) finds its needle stopped
            # by session.stop, not the ask: the technician asked all the same (interrupted).
            if self._stop_asked.is_set():
                session.stop_requested = True
            elif self._driver_lost.is_set():  # nobody asked: its driver went (a lease ran
                session.stop_requested = False  # out, a client hung): not the technician
            tell_passes()
            try:
                if log_failed:  # no close (a pass may be open): wound down, left open
                    _wind_down_quietly(session, sid)
                    raise PassLogError(error)
                summary, sheet, left_open = self._finish(session, client_id, epoch)
            except PassLogError as exc:  # left open as far as recorded: resumable once the
                # disk has room; the client hears it (exit 3) with the passes completed
                if not log_failed:
                    error = f"{error + '; ' if error else ''}closing the session failed: {exc}"
                closed = None if log_failed else session.kept_close()
                if closed is not None:  # recorded closed, only its receipt not anchored
                    log.error("session closed, but its receipt could not be anchored",
                              session_id=sid, error=str(exc))
                    (summary, sheet), left_open, unanchored = closed, False, True
                else:
                    log.error("the pass log could not be written: session left open",
                              session_id=sid, error=str(exc))
                    log_failed, sheet, left_open = True, "", True
                    summary = _recorded_so_far(session, sid)
            except Exception as exc:  # every client still hears how it ended; never "running"
                log.exception("closing the session failed", session_id=sid)
                error = f"{error + '; ' if error else ''}closing the session failed: {exc}"
                summary, sheet, left_open = {}, "", _still_open(session, sid)
            outcome = SessionOutcome.log_error if log_failed else _outcome(session)
            # `cause`: why it ended when its outcome cannot say (a calibration that expired
            # between passes: `incomplete`, left open to be resumed once recalibrated)
            out["result"] = {"session_id": sid, "outcome": outcome.value,
                             "complete": outcome.complete, "summary": summary,
                             "aftercare": sheet, "error": error, "left_open": left_open,
                             "cause": session.calibration_lapsed,
                             "record_error": log_failed or unanchored}
            with self._lock:
                self._status = {**(self._status or {}), "running": False,
                                "outcome": outcome.value, "complete": outcome.complete,
                                "left_open": left_open}

    def _finish(self, session: Any, client_id: str,
                epoch: int) -> tuple[dict[str, Any], str, bool]:
        """Close the session, or (asked with `leave_open`, as `smp run` does) leave it OPEN when
        it ended on a fault, an E-stop, a lost pen or the pedal, or its driving client went
        (disconnected, lease run out, released) or the service stopped (as a host crash at the
        pen's port), and no session.stop asked it to end: the cause can be cleared and the
        rest played with session.resume. Clients that know nothing of resuming (API 1) get
        their sessions closed, as before, except when the service stops under them (as a host
        crash leaves any session: its pass log must say so, `leave_open` or not; the web
        console's Start sends none). (summary, aftercare, left open)."""
        from smpdevice.sessions.resume import left_resumable

        service_stopping = (bool(getattr(self.service, "closing", False))
                            and self._stop.is_set() and not self._stop_asked.is_set())
        if not self._leave_open and not service_stopping:
            summary, sheet = session.close()
            return summary, sheet, False
        try:
            asked = self._stop_asked.is_set()
            # The driver may be gone although the session never asked (the dead-man stopped
            # the needle first, and the pass ended on that stop): its lease says so.
            lease = self.service.lease
            driver_gone = (self._driver_lost.is_set() or lease.holder() != client_id
                           or lease.epoch != epoch)
            host_gone = driver_gone or (self._stop.is_set() and not asked)
            resumable = left_resumable(session, stop_asked=asked, host_gone=host_gone)
        except SmpError as exc:  # the log cannot say: close it, as before
            log.warning("could not judge the session resumable", error=str(exc))
            resumable = False
        if resumable:
            return session.suspend(), "", True
        summary, sheet = session.close()
        return summary, sheet, False


def _outcome(session: Any) -> Any:
    """The session's outcome; when its close failed before saying it, the pass log's, else
    what is known without it."""
    from smpdevice.outcomes import SessionOutcome
    from smpdevice.sessions.session_records import session_summary

    if session.outcome is not None:
        return session.outcome
    try:
        return SessionOutcome(session_summary(
            session.passlog, session.session_id, session.profile,
            stop_requested=session.stop_requested, pen_state=session.pen.state.value)["outcome"])
    except Exception:
        return (SessionOutcome.interrupted if session.stop_requested
                else SessionOutcome.incomplete)


def _wind_down_quietly(session: Any, sid: str) -> None:
    """suspend(): it writes nothing (reads the summary): the pen disarmed, the session's
    listeners and client floor let go, its recording sealed."""
    try:
        session.suspend()
    except Exception as exc:
        log.warning("could not wind the session down", session_id=sid, error=str(exc))


def _recorded_so_far(session: Any, sid: str) -> dict[str, Any]:
    """What the pass log holds of `sid` after it failed to write: its passes by outcome, read
    from the log (readable on a full disk), else from the passes the session recorded."""
    try:
        passes = session.passlog.session(sid).passes
        outcomes = [str(p.outcome) for p in passes if p.outcome is not None]
    except Exception:
        outcomes = [r.outcome.value for r in session.results]
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"passes": len(outcomes), "outcomes": counts}


def _still_open(session: Any, sid: str) -> bool:
    """Whether the pass log still has `sid` open (its close failed part way); open when the
    log cannot say either."""
    try:
        return session.passlog.session(sid).closed_at is None
    except Exception:
        return True
