"""Review 16b: Chromium's <input type=number> dropped what it could not read as it was typed:
a decimal comma "4,5" became 45 and Apply sent duty 45 %, ten times what was typed; "0x10" read
10, "1 5" 15. The number fields are text now, and only a plain decimal (sign, digits, a point
and digits, an exponent) is a number: anything else is refused, naming the field."""

from __future__ import annotations

from smpdevice.service.auth import Role

from .conftest import pytestmark, take_control  # noqa: F401

NOT_NUMBERS = ["4,5", "0x10", "1 5", "4.5.1", "1e", "e5", "--4", "4%", "Infinity", "NaN", "٤٥",
               "1_0", "0b1", ".", "+"]


def _type(page, field, text):
    page.click(field)
    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    page.keyboard.type(text)
    page.evaluate("() => { document.getElementById('message').hidden = true; }")


def test_a_decimal_comma_and_other_non_numbers_are_refused(page, service, sim):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    take_control(page)
    duty = sim.firmware.duty_permille
    for text in NOT_NUMBERS:
        _type(page, "#sp-duty", text)
        assert page.input_value("#sp-duty") == text, "the field changed what was typed"
        page.click("#apply-btn")
        page.wait_for_selector("#message:not([hidden])", timeout=10_000)
        message = page.text_content("#message") or ""
        assert message.startswith("Duty %: not a number"), (text, message)
        assert sim.firmware.duty_permille == duty, f"typed {text!r}: the duty changed"
    _type(page, "#sp-duty", "4,5")
    page.click("#apply-btn")
    page.wait_for_selector("#message:not([hidden])", timeout=10_000)
    assert "write a decimal point, 4.5" in (page.text_content("#message") or "")


def test_plain_decimals_are_numbers(page, service):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    for text, value in [("40", 40), ("+40", 40), (" 4.5e1 ", 45), (".5", 0.5), ("-0.25", -0.25),
                        ("1E2", 100), ("4e-1", 0.4)]:
        _type(page, "#sp-duty", text)
        assert page.evaluate("() => numberIn('sp-duty')") == value, text
