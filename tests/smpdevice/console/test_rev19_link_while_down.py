"""Review 19: docs/console.md: another console link opened in a console tab: the page "swaps to
it only once the service accepted the token. A wrong token ... changes nothing". A link opened
while the service was down (restarting) was dropped ("this page keeps its connection", though
it had none), and the page came back under its old token: a technician's page handed over with
an operator's link kept the technician's role. The link now waits for the service's return and
is tried first on the page's next connection; refused, the page's own token stays."""

from __future__ import annotations

import socket
from contextlib import contextmanager

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import pytestmark  # noqa: F401  (skip without chromium)

CONNECTED = "#conn:has-text('connected'):not(:has-text('dis'))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _serve(sim, data_dir, port):
    with ServiceHandle(ServiceOptions(port=sim.url, listen=f"127.0.0.1:{port}",
                                      data_dir=data_dir, lease_ms=1000,
                                      calibration=true_calibration(sim))) as handle:
        yield handle


def _link_while_down(page, sim, data_dir, fragment_of) -> tuple[str, str, str]:
    """A technician's page; the service stops; the link `fragment_of(service)` is opened in the
    tab; the service starts again. What the page said while down, its role and message after."""
    port = _free_port()
    with _serve(sim, data_dir, port) as first:
        page.goto(first.console_url(Role.TECHNICIAN))
        page.wait_for_selector("#role:has-text('role: technician')")
        fragment = fragment_of(first)
    page.wait_for_selector("#conn:has-text('disconnected')")
    page.evaluate("(h) => { location.hash = h; }", fragment)
    page.wait_for_selector("#message:not([hidden])")  # the page says what it does with it
    said = page.inner_text("#message")
    with _serve(sim, data_dir, port):
        page.wait_for_selector(CONNECTED)
        page.wait_for_selector("#role:has-text('role: ')")
        role = page.inner_text("#role")
        message = "" if page.is_hidden("#message") else page.inner_text("#message")
    return said, role, message


def test_a_link_opened_while_the_service_restarts_is_not_dropped(page, sim, data_dir):
    said, role, message = _link_while_down(
        page, sim, data_dir, lambda s: s.console_url(Role.OPERATOR).split("#", 1)[1])
    assert "keeps its connection" not in said, said
    assert "once it is back" in said, said
    assert role == "role: operator", f"{role!r} after the operator's link; the page said: {said}"
    assert "once it is back" not in message, message


def test_a_wrong_link_opened_while_down_leaves_the_pages_own_token(page, sim, data_dir):
    said, role, message = _link_while_down(page, sim, data_dir,
                                           lambda s: "token=not-a-token-of-this-service-1234")
    assert "once it is back" in said, said
    assert role == "role: technician", role
    assert message.startswith("cannot connect under the link's token"), message
