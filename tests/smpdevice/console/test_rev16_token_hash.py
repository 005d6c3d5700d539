"""Review 16: a second console link opened in a tab that shows the console changes only the
fragment. The page keeps that token, removes it from the address bar and connects again under
it (docs/console.md), instead of leaving it there and keeping the old role."""

from __future__ import annotations

from smpdevice.service.auth import Role

from .conftest import pytestmark  # noqa: F401


def test_a_token_opened_in_a_console_tab_leaves_the_address_bar(page, service):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    assert "token=" not in page.url
    page.goto(service.console_url(Role.VIEWER))  # same document: only the fragment differs
    # a hashchange handler has run by the next frame
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
    assert "token=" not in page.url, "the viewer's token stays in the address bar"
    page.wait_for_selector("#role:has-text('role: viewer')", timeout=10_000)
    assert page.get_attribute("body", "data-role") == "viewer"
    assert page.evaluate("() => sessionStorage.getItem('smp-token')") == \
        service.token(Role.VIEWER)
