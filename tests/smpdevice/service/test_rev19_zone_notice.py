"""Review 19: a zone changed while armed is no state change, so no `pen.state` came and the
console kept the old zone's window (docs/console.md, Live: "against the active zone's window").
Every change of the active zone through `pen.set_zone` is told to every client as `pen.zone`
with the window `pen.state` answers; a refused or unchanged zone tells nothing."""

from __future__ import annotations

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.conftest import CROWN

from .conftest import connect, run


def test_a_zone_changed_while_armed_is_told_with_its_window(service):
    async def main() -> tuple[list[dict], dict]:
        watcher = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        try:
            await op.drive(lease_ms=1500)
            await op.call("pen.set_zone", zone="crown")
            told = [await watcher.next_notification("pen.zone")]
            await op.call("pen.set_setpoints", **CROWN)
            await op.call("pen.arm")
            await op.call("pen.set_zone", zone="hairline")  # armed: no state change
            told.append(await watcher.next_notification("pen.zone"))
            hairline = await watcher.call("pen.state")
            with pytest.raises(ServiceError):
                await op.call("pen.set_zone", zone="nowhere")  # refused: nothing changed
            await op.call("pen.set_zone", zone="hairline")  # the same again: nothing changed
            await op.call("pen.set_zone", zone="crown")
            told.append(await watcher.next_notification("pen.zone"))  # the next one: crown's
            await op.call("pen.disarm")
            await op.release()
            return told, hairline
        finally:
            await op.close()
            await watcher.close()

    told, hairline = run(main())
    assert [t["zone"] for t in told] == ["crown", "hairline", "crown"]
    assert hairline["state"] == "armed" and hairline["zone"] == "hairline"
    assert told[1]["zone_window"] == hairline["zone_window"]
    assert told[0]["zone_window"] == told[2]["zone_window"] != hairline["zone_window"]
    assert told[1]["client"] == hairline["driver"]
