"""docs/console.md: "**Esc** always E-stops; **Space** E-stops unless the cursor is in a text
field", for every control of the page, in Chromium against a real service and simulated pen."""

from __future__ import annotations

from firmware_protocol.codes import FirmwareState
from smpdevice.service.auth import Role

from .conftest import pytestmark  # noqa: F401  (skip without chromium)
from .test_console import _open, _wait_sim

TABS = ("live", "session", "calibration", "log")
# What a control is, as the page's own rule should see it (a text cursor or not).
KIND = """el => ({tag: el.tagName, type: el.type || "", id: el.id, name: el.name || "",
  text: el.tagName === "TEXTAREA" || (el.tagName === "INPUT" &&
        ["text", "search", "email", "url", "tel", "password", "number"].includes(el.type)),
  checked: !!el.checked})"""

# Those of the finding (a screening answer, the quick-passes box, the file picker, the zone
# list) and the E-stop button itself: always tried.
MUST = ("INPUT#scr-open_sores-no:radio", "INPUT#quick:checkbox", "INPUT#profile-file:file",
        "SELECT#zone:select-one", "BUTTON#estop:button")


def _estop_answered(page) -> None:
    """The page got the service's answer to a pen.estop it sent (it marks the body then)."""
    page.wait_for_selector("body[data-estop-ms]", state="attached", timeout=30_000)


def test_space_estops_from_every_control_but_a_text_field(page, service, sim):
    choosers: list[object] = []
    def on_chooser(chooser: object) -> None:
        choosers.append(chooser)

    page.on("filechooser", on_chooser)
    try:
        _open(page, service, Role.TECHNICIAN)  # every control: the clear-fault box too
        page.keyboard.press("Escape")  # nothing focused: E-stop, and the fault banner shows
        _wait_sim(sim, FirmwareState.ESTOP, page)
        page.wait_for_selector("#fault-banner:not([hidden])")
        seen, kinds = _space_on_every_control(page)
    finally:
        page.remove_listener("filechooser", on_chooser)
    assert choosers == [], "Space opened the file picker"
    for must in MUST:
        assert must in seen, (must, sorted(seen))
    assert {"radio", "checkbox", "file", "select-one", "button"} <= {t for _, t in kinds}
    assert sim.firmware.state is FirmwareState.ESTOP


def _space_on_every_control(page) -> tuple[set[str], set[tuple[str, str]]]:
    """Space in each visible control of each tab: a text field types it, any other control
    E-stops (one of each kind, and those of MUST) and is not toggled. The controls of a tab
    are described in one call (a round trip per control was most of the test's time); a
    control acted on is checked to be the one described."""
    seen: set[str] = set()
    kinds: set[tuple[str, str]] = set()
    for tab in TABS:
        page.click(f"button[data-tab={tab}]")
        controls = page.locator("input:visible, select:visible, textarea:visible, "
                                "button:visible")
        for i, kind in enumerate(controls.evaluate_all(f"els => els.map({KIND})")):
            control = controls.nth(i)
            key = f"{kind['tag']}#{kind['id'] or kind['name']}:{kind['type']}"
            if kind["text"]:
                if kind["type"] != "number":  # a number field takes no space character
                    control.fill("ana")
                    page.keyboard.press("Space")
                    assert control.input_value() == "ana ", f"{key}: Space did not type"
                    control.fill("")
                continue
            if (kind["tag"], kind["type"]) in kinds and key not in MUST:
                continue  # the rule goes by kind of control: one of each (E-stops are slow)
            kinds.add((kind["tag"], kind["type"]))
            control.focus()
            page.evaluate("delete document.body.dataset.estopMs")
            page.keyboard.press("Space")
            _estop_answered(page)
            # the control described above (so none shifted), its tick as it was
            assert control.evaluate(KIND) == kind, f"{key}: Space also toggled it"
            seen.add(key)
    return seen, kinds


def test_no_control_is_a_drop_down_that_would_keep_esc(page, service):
    _open(page, service, Role.OPERATOR)
    sizes = page.eval_on_selector_all("select", "els => els.map(e => e.multiple ? 99 : e.size)")
    assert sizes and all(size >= 2 for size in sizes), sizes


def test_esc_estops_right_after_picking_a_zone(page, service, sim):
    _open(page, service, Role.OPERATOR)
    page.click("#zone")  # as an operator picking a zone
    page.keyboard.press("Escape")
    _wait_sim(sim, FirmwareState.ESTOP, page)  # raises if the pen never latches
    assert sim.firmware.state is FirmwareState.ESTOP
