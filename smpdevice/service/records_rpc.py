"""The service's `sessions.*` methods (viewer): each reads the pass logs through `records_api`
in the viewers' own bounded pool (`PenService.viewer_reads`), so it never holds up the pen's
event loop, a running session, or the close's stop (not the loop's default pool). Only these
record reads use that pool: nothing a driver needs to start a session (session.check has its
own lane) waits behind them."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from smpdevice.service import records_api
from smpdevice.service.limits import LIST_PAGE_MAX
from smpdevice.service.pen_service import method
from smpdevice.service.rpc import INVALID_PARAMS, RpcError

if TYPE_CHECKING:
    from smpdevice.service.pen_service import PenService


@method("sessions.list")
async def m_sessions_list(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    try:
        return await self.viewer_read(records_api.list_sessions, self.passlog_path,
                                       p.get("start"), p.get("limit", LIST_PAGE_MAX))
    except records_api.PageRefused as exc:  # start < -limit: no JSON Schema can say it
        raise RpcError(INVALID_PARAMS, f"sessions.list: {exc}") from None


@method("sessions.show")
async def m_sessions_show(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await self.viewer_read(records_api.show, self.passlog_path, p["session_id"])


@method("sessions.verify")
async def m_sessions_verify(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await self.viewer_read(records_api.verify, self.passlog_path)


@method("sessions.export")
async def m_sessions_export(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    return await self.viewer_read(records_api.export, self.passlog_path, p["format"])


@method("session.check")
async def m_session_check(self: PenService, client: Any, p: dict[str, Any]) -> dict[str, Any]:
    """A profile parsed against the pen's envelope: in its own lane (`profile_checks`), never
    behind the viewers' held record reads (a driver calls it before session.run)."""
    return await asyncio.get_running_loop().run_in_executor(
        self.profile_checks, self.work.check, p["profile"], p.get("format", "yaml"))
