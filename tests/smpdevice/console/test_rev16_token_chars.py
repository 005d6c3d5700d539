"""Review 16: every token the service accepts (20-128 printable ASCII, docs/service.md) works
in the console. console_url() URL-encodes it in the fragment; app.js takes everything after
`token=` and decodes it (it once kept only [A-Za-z0-9_-]: a token with `.` or `~` was cut)."""

from __future__ import annotations

import json
import os
from urllib.parse import unquote, urlsplit

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS

from .conftest import pytestmark  # noqa: F401

# '.' and '~' (the reviewer's), and the characters a URL gives a meaning to: & # % + = ? / ...
TOKENS = {"technician": "technician.token.0123456789~y",
          "operator": "op&role=technician#x%41+b=?/\\\"'<>`{}|^[]:@;,$!()*",
          "viewer": "%E9%zz viewer-token-0123456789".replace(" ", "_")}


def test_console_url_carries_any_printable_token_encoded(sim, data_dir):
    with _service(sim, data_dir) as service:
        for role in Role:
            fragment = urlsplit(service.console_url(role)).fragment
            assert fragment.startswith("token=")
            assert unquote(fragment.removeprefix("token=")) == TOKENS[role.label]
            assert "#" not in fragment and "&" not in fragment and " " not in fragment


def test_console_connects_with_every_token_the_service_accepts(page, sim, data_dir):
    with _service(sim, data_dir) as service:
        assert service.token(Role.TECHNICIAN) == TOKENS["technician"]  # the service took them
        for role in (Role.TECHNICIAN, Role.OPERATOR, Role.VIEWER):  # one tab: hashchange too
            page.goto(service.console_url(role))
            page.wait_for_selector(f"#role:has-text('role: {role.label}')", timeout=10_000)
            assert page.is_hidden("#message"), page.text_content("#message")
            assert "token=" not in page.url
        page.keyboard.press("Escape")  # the console's E-stop, under the last token
        page.wait_for_selector("#message:has-text('E-stop')")
        assert "rpc.hello" not in (page.text_content("#message") or "")
        page.wait_for_selector("#fault-banner:not([hidden])")


def _service(sim, data_dir) -> ServiceHandle:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / "service.tokens.json"
    path.write_text(json.dumps(TOKENS))
    os.chmod(path, 0o600)
    return ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                        lease_ms=PEN_LEASE_MS,
                                        calibration=true_calibration(sim)))
