"""Review 19: `smp serve --open` and `smp demo --web` give the browser a 0600 page in the data
directory instead of the console URL (its token off the browser's command line): a browser
given that page comes to the console, under the technician's token."""

from __future__ import annotations

import stat

from smpdevice.service.auth import Role
from smpdevice.service.command import CONSOLE_PAGE, service_dir, write_console_page

from .conftest import pytestmark  # noqa: F401  (skip without chromium)


def test_the_opened_page_brings_the_browser_to_the_console(page, service, data_dir):
    directory = service_dir(service.server)
    assert directory == data_dir
    redirect = directory / CONSOLE_PAGE
    write_console_page(service.console_url(Role.TECHNICIAN), redirect)
    assert stat.S_IMODE(redirect.stat().st_mode) == 0o600
    page.goto(redirect.as_uri())
    page.wait_for_selector("#role:has-text('role: technician')")
    assert page.url.startswith(service.url.replace("ws://", "http://").rsplit("/", 1)[0])
    assert "token" not in page.url  # the page took it out of the address bar
