"""Review 19: `rpc.describe` lists every notification the service sends (docs/service.md).

The console's `pen.zone` (the active zone's window, sent when a zone changes while armed) was
sent before it was described. Every name the service's modules broadcast is read from their
source, so a notification added without its schema fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import smpdevice.service as service_package
from smpdevice.service.schema import NOTIFICATIONS, describe

_BROADCAST = re.compile(r"broadcast(?:_threadsafe)?\(\s*\"([a-z_.]+)\"")


def test_every_broadcast_notification_is_described() -> None:
    sent = {name for path in Path(service_package.__file__).parent.glob("*.py")
            for name in _BROADCAST.findall(path.read_text(encoding="utf-8"))}
    assert {"pen.state", "pen.zone", "session.result"} <= sent  # the scan finds them
    assert sent <= set(describe()["notifications"]), sent - set(NOTIFICATIONS)
