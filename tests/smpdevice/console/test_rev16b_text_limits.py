"""Review 16b: the technician fields and the clear's reason have no maxlength (it counted UTF-16
units and cut silently), so a 16 MiB paste went in whole: laying it out kept the page's one
thread busy for seconds, its heartbeats stopped and the service dropped it as driver (a running
needle stops). Now an insertion past the service's limit (a name 200 characters, a reason 500,
as the service counts them) is refused whole, with a message, before it is laid out."""

from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient

from .conftest import pytestmark, take_control  # noqa: F401

PASTE = """([text, times]) => { document.execCommand('insertText', false, text.repeat(times));
    document.body.offsetHeight; }"""


def _driving(page, service) -> str:
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    take_control(page)
    return page.evaluate("() => app.me")


def _driver(service) -> str:
    with SyncServiceClient.connect(service.url, token=service.token(Role.VIEWER),
                                   role=Role.VIEWER) as viewer:
        return viewer.call("pen.state")["driver"]


def _refused(page, field, name, limit, kept):
    message = page.text_content("#message") or ""
    assert page.is_visible("#message") and message.startswith(f"{name}: "), message
    assert f"over the service's limit of {limit} characters; not kept" in message, message
    assert page.input_value(field) == kept, f"{field} holds something else"
    page.evaluate("() => { document.getElementById('message').hidden = true; }")


def test_a_huge_paste_into_the_technician_field_keeps_the_pen(page, service):
    me = _driving(page, service)
    for tab, field in (("session", "#technician"), ("calibration", "#cal-tech")):
        page.click(f"button[data-tab={tab}]")
        page.fill(field, "Ana")
        page.focus(field)
        page.evaluate(PASTE, ["ab cd ", 16 * 1024 * 1024 // 6])  # 16 MiB: a log copied
        page.evaluate("() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))")
        assert _driver(service) == me, page.text_content("#message")
        _refused(page, field, "Technician", 200, "Ana")


def test_past_the_limit_is_refused_whole_never_cut(page, service):
    _driving(page, service)
    page.click("button[data-tab=session]")
    page.fill("#technician", "b" * 196)
    page.focus("#technician")
    page.keyboard.press("End")
    # 5 characters where 4 fit (emoji: 2 UTF-16 units, 1 character as the service counts)
    page.keyboard.insert_text("\U0001F600" * 5)
    _refused(page, "#technician", "Technician", 200, "b" * 196)
    page.keyboard.insert_text("\U0001F600" * 4)  # exactly 200: kept
    assert page.input_value("#technician") == "b" * 196 + "\U0001F600" * 4
    page.keyboard.type("x")  # the 201st, typed
    _refused(page, "#technician", "Technician", 200, "b" * 196 + "\U0001F600" * 4)
    page.keyboard.press("Control+A")  # a selection replaced: it counts what stays
    page.keyboard.insert_text("c" * 200)
    assert page.input_value("#technician") == "c" * 200


def test_the_clear_reason_is_bounded_at_500(page, service, sim):
    _driving(page, service)
    page.click("#estop")
    page.wait_for_selector("#clear-reason", state="visible", timeout=10_000)
    page.focus("#clear-reason")
    page.evaluate(PASTE, ["r", 501])
    _refused(page, "#clear-reason", "The reason to clear", 500, "")
    page.evaluate(PASTE, ["r", 500])
    assert page.input_value("#clear-reason") == "r" * 500
