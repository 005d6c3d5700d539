"""The service's `pen.*` commands: taking and keeping the pen (the dead-man lease), and the
commands that set it up, start and stop its needle, E-stop it and clear its faults; and
`telemetry.subscribe` / `unsubscribe`.

Registered with `@method` as every handler (`pen_service` imports this module); each is
`async (service, client, params) -> result`, the params already checked against the schema.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.checks import CLEAR_REASON_MIN_SEEN, visible_count
from smpdevice.service.deadman import lapse_reason, on_own_thread
from smpdevice.service.pen_service import SETTLE_WAIT_S, method, zone_window
from smpdevice.service.rpc import RpcError

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")


# ------------------------------------------------------------------ dead-man


@method("pen.drive")
async def m_drive(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    lapsed = self.lease.claim(client.id, p["lease_ms"])
    waited = lapsed is not None or self.lease.unacted > 0
    if lapsed is not None:
        # The claim replaced a driver whose lease ran out (before the watchdog's next look):
        # that loss is acted on first, as the watchdog would (stop, disarm, the clients told),
        # so the new driver never inherits a needle it did not start.
        why = lapse_reason(lapsed)
        await on_own_thread(self.watchdog.lost, lapsed, why)  # never behind the shared pool
        await self.settled(why, SETTLE_WAIT_S)  # its requests in flight end disarmed
    elif waited:  # a loss (the watchdog's, a release's) still being acted on: its stop has
        # a thread of its own; this wait (no stop) stays in the loop's bounded pool
        await asyncio.to_thread(self.lease.wait_acted, SETTLE_WAIT_S)
    if waited:  # the lease counts from the answer; a drive lost meanwhile is an error
        self.lease.restart(client.id)
    self.broadcast("pen.driver", {"client": client.id, "reason": "pen.drive"})
    return {"ok": True, "client": client.id, "lease_ms": p["lease_ms"]}


@method("pen.heartbeat")
async def m_heartbeat(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    d = self.lease.renew(client.id)
    return {"ok": True, "lease_ms": d.lease_ms}


@method("pen.release")
async def m_release(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    why = f"{client.id} released"
    # Dropped here, on the loop: one release of a flood loses the pen, and only a loss starts
    # a thread (its stop's own, never behind the loop's shared pool).
    dropped = self.lease.drop(client.id)
    if dropped is not None:
        await on_own_thread(self.watchdog.lost, dropped, why)
        await self.settled(why, SETTLE_WAIT_S)  # its requests in flight end disarmed
    return {"ok": True}


# ------------------------------------------------------------------ telemetry


@method("telemetry.subscribe")
async def m_subscribe(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    client.telemetry_hz = p["rate_hz"]
    return {"ok": True, "rate_hz": p["rate_hz"]}


@method("telemetry.unsubscribe")
async def m_unsubscribe(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    client.telemetry_hz = 0
    return {"ok": True}


# ------------------------------------------------------------------ commands


@method("pen.set_zone")
async def m_set_zone(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    before = (self.pen.zone_name, zone_window(self.pen.zone))
    try:
        zone = await self.drive(client, self.pen.set_zone, p["zone"])
    finally:  # told whenever it changed (a refusal after the change too): a zone set while
        # armed is no state change, and the consoles draw the active zone's window
        now = (self.pen.zone_name, zone_window(self.pen.zone))
        if now != before:
            self.broadcast("pen.zone", {"zone": now[0], "zone_window": now[1],
                                        "client": client.id})
    return {"zone": p["zone"], "envelope": zone.model_dump()}


@method("pen.set_setpoints")
async def m_set_setpoints(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return asdict(await self.drive(client, self.pen.set_setpoints, **p))


@method("pen.arm")
async def m_arm(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    await self.drive(client, self.pen.arm)
    return {"ok": True}


@method("pen.disarm")
async def m_disarm(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    await self.apen.call(disarm_from_outside, self.pen, f"pen.disarm ({client.id})")
    return {"ok": True}


def disarm_from_outside(pen: Any, source: str) -> None:
    """A client's disarm (the console's button), at its turn in the call worker: an input of
    the session open on the pen, if any (a calibration swapped between two passes in one zone
    needs it), recorded right before its DISARM so a replay applies it at that point."""
    from smpdevice.replay.recorder import note_disarm

    note_disarm(pen, source)
    pen.disarm()


@method("pen.start")
async def m_start(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    await self.stops.start(lambda asked: self.drive(client, self.stops.start_needle,
                                                    self.pen, asked))
    return {"ok": True}


@method("pen.stop")
async def m_stop(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    # wins over every start received before it, whatever the state reads now
    await self.stops.stop(self.apen.stop_needle_run, lambda: self.pen.state, SETTLE_WAIT_S,
                          self.pen.stop_spin,  # a calibration's spin too
                          gone=getattr(client, "gone", None))  # closed: nobody to answer
    return {"ok": True}


@method("pen.estop")
async def m_estop(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return self.estop_inline(client)  # the connection calls it first, before dispatch


@method("pen.clear_faults")
async def m_clear(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    reason = p["reason"].strip()
    if visible_count(reason) < CLEAR_REASON_MIN_SEEN:  # blanks or one emoji say nothing
        raise RpcError(-32602, "pen.clear_faults: reason must say why it is safe to clear "
                               f"(at least {CLEAR_REASON_MIN_SEEN} visible characters, "
                               "counted as a reader sees them)", {"param": "reason"})
    was, fault = self.pen.state.value, str(self.pen.last_fault or "")
    await self.apen.clear_faults()
    log.warning("faults cleared", client=client.id, role=client.role.label,
                reason=reason, was=was, fault=fault)
    return {"ok": True}
