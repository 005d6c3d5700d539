"""The service finds its pen again after a lost link (cable, USB hub, a stalled simulator).

Reconnecting is the controller's own `reconnect()`: the port is opened anew and the handshake
settles the pen's state. It never starts anything: a needle found running is stopped, an
E-stop latched here is re-asserted, a fault the pen latched (its lease expired while the link
was down) stays latched until a technician clears it, and a pen that comes back idle stays
idle until a driving client arms and starts it again.

- Automatically: while the pen is `disconnected` and no session is finishing, the service
  tries again after 1 s, then less often (up to every 10 s).
- On request: `pen.reconnect` (operator) tries at once and answers the state it reached.

Only the service's own pen is taken back: if another pen answers on the port it is closed
again and the service stops trying by itself (`smp serve` must be restarted for another pen).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from smpdevice.control.states import DifferentPen, HandshakeError, State
from smpdevice.errors import SmpError
from smpdevice.service.pen_service import method
from smpdevice.service.rpc import REFUSED, RpcError

if TYPE_CHECKING:
    from smpdevice.service.deadman import GatedPenController
    from smpdevice.service.pen_service import PenService

log = structlog.get_logger("smpdevice.service")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 10.0


class AnotherPen(HandshakeError):
    """Another pen than the service's answered on its port."""


def reconnect_same_pen(pen: GatedPenController, serial: str | None) -> str:
    """In the call worker: reconnect `pen` if its link is lost, only to the pen `serial`.
    Answers the state reached."""
    if pen.state is not State.DISCONNECTED:
        return pen.state.value
    try:
        pen.reconnect()  # takes back only the pen it had: another one is refused, never adopted
    except DifferentPen as exc:
        raise AnotherPen(f"pen {exc.serial} answered on {pen.port_url}, not this service's pen "
                         f"{serial}; restart `smp serve` to serve another pen") from None
    return pen.state.value


def _session_running(service: PenService) -> bool:
    status = service.work.status()
    return bool(status and status.get("running"))


async def keep_reconnecting(service: PenService) -> None:
    """The service's background task: find the pen again whenever its link was lost."""
    delay_s, said = RETRY_FIRST_S, ""
    while True:
        await asyncio.sleep(delay_s)
        if service.pen.state is not State.DISCONNECTED or _session_running(service):
            delay_s, said = RETRY_FIRST_S, ""
            continue
        try:
            state = await service.apen.call(reconnect_same_pen, service.pen, service.serial)
        except AnotherPen as exc:
            log.error("not reconnecting: another pen is on the port", error=str(exc))
            return
        except Exception as exc:  # the port is still gone (OSError, SmpError): try later
            if str(exc) != said:  # one line per new reason, not one per try
                said = str(exc)
                log.warning("pen still unreachable; trying again", error=said[:300])
            delay_s = min(delay_s * 2, RETRY_MAX_S)
            continue
        log.warning("pen reconnected; nothing was restarted", state=state)
        delay_s, said = RETRY_FIRST_S, ""


@method("pen.reconnect")
async def m_reconnect(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    if self.pen.state is not State.DISCONNECTED:
        raise RpcError(REFUSED, f"the pen is connected ({self.pen.state.value}); "
                                "pen.reconnect is for a lost link")
    if _session_running(self):
        raise RpcError(REFUSED, "a session is still finishing; try again when it has ended")
    try:
        state = await self.apen.call(reconnect_same_pen, self.pen, self.serial)
    except SmpError as exc:
        raise RpcError(REFUSED, f"pen.reconnect: {exc}") from None
    except OSError as exc:  # the port itself is still gone
        raise RpcError(REFUSED, f"pen.reconnect: the port {self.pen.port_url} cannot be "
                                f"opened ({exc}); check the cable and try again") from None
    log.warning("pen reconnected on request; nothing was restarted", client=client.id,
                state=state)
    return {"ok": True, "state": state}
