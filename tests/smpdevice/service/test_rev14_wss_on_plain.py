"""Review 14 (svc): a wss:// URL pointed at a service serving plain ws:// said "cannot reach
... ()": the SSL handshake cut short has no text. It now names what failed and that wss://
needs `smp serve --tls-cert`."""

from __future__ import annotations

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient, ServiceError
from tests.smpdevice.service.conftest import run


def test_wss_to_a_plain_service_says_why(service):
    url = service.url.replace("ws://", "wss://", 1)
    with pytest.raises(ServiceError) as refused:
        run(ServiceClient.connect(url, token=service.token(Role.VIEWER), role=Role.VIEWER))
    text = str(refused.value)
    assert "()" not in text, text
    assert "--tls-cert" in text and url in text, text
