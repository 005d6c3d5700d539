"""Review 16: numbers and names typed in the console's forms reach the service as typed, or
are refused by the page, naming the field: never a different value. A number field that cannot
hold its text (1e400, blank) once sent 0 (+"" is 0) and moved the actuator to 0 mm; technician
names were cut to 64 characters while the station's limit is 200 (docs/service.md)."""

from __future__ import annotations

from pathlib import Path

from smpdevice.service.auth import Role

from .conftest import pytestmark, take_control  # noqa: F401


def _open(page, service, role: Role = Role.TECHNICIAN) -> None:
    page.goto(service.console_url(role))
    page.wait_for_selector("#role:has-text('role:')")


def test_200_character_technician_names_are_kept(page, service):
    _open(page, service)
    # 200 characters: the station's limit, taken by smp run -t; emoji are 2 UTF-16 units each
    for name in ("Ana " + "b" * 196, "Ana " + "\U0001F600" * 196):
        for tab, field in (("session", "#technician"), ("calibration", "#cal-tech")):
            page.click(f"button[data-tab={tab}]")
            page.fill(field, "")
            page.click(field)
            page.keyboard.insert_text(name)
            assert page.input_value(field) == name, field


def test_no_text_field_cuts_what_is_typed():
    """maxlength counts UTF-16 units, the service characters: a name or reason the service
    takes could be cut silently. The service's limit is the one, and it says so."""
    html = (Path(__file__).resolve().parents[3] / "smpdevice" / "ui" / "web" / "index.html")
    assert "maxlength" not in html.read_text()


def _type_number(page, field: str, text: str) -> None:
    page.click(field)
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    if text:
        page.keyboard.type(text)
    page.evaluate("() => { document.getElementById('message').hidden = true; }")


def test_a_number_the_field_cannot_hold_never_moves_the_actuator_to_zero(page, service, sim):
    _open(page, service)
    page.click("button[data-tab=calibration]")
    take_control(page, "#cal-drive")
    page.click("#cal-begin")
    page.wait_for_selector("#cal-out:has-text('ok')", timeout=10_000)
    before = page.text_content("#cal-out")
    for text in ("1e400", "", "-1e999"):  # too large, blank, too small: no number
        _type_number(page, "#cal-mm", text)
        page.click("#cal-move")
        page.wait_for_selector("#message:not([hidden])", timeout=10_000)
        message = page.text_content("#message") or ""
        assert message.startswith("Actuator mm: not a number"), (text, message)
        assert page.text_content("#cal-out") == before, f"typed {text!r}: something moved"


def test_setpoints_without_a_number_send_nothing(page, service, sim):
    _open(page, service)
    take_control(page)
    pen = service.server.service.pen
    zone = pen.zone_name
    page.click("#zone option[value=crown]")
    _type_number(page, "#sp-period", "")
    page.click("#apply-btn")
    page.wait_for_selector("#message:not([hidden])", timeout=10_000)
    assert (page.text_content("#message") or "").startswith("Period ms: not a number")
    assert pen.zone_name == zone != "crown"  # not even the zone: nothing of the form was sent
