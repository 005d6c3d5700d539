"""Review 19: docs/console.md, Live: "depth and speed over the last 10 s against the active
zone's window (green band)". A zone set while the pen is armed is no state change: the page
kept the old zone's band while the needle ran in the new one. The band now follows a zone set
by any client (the `pen.zone` notification), is read again when the needle starts, and after
every "Set zone + setpoints", refused or not."""

from __future__ import annotations

from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient

from .conftest import pytestmark, take_control  # noqa: F401  (skip without chromium)

BAND = "(w) => app.window && app.window.depth_max_mm === w.depth_max_mm " \
       "&& app.window.speed_max_hz === w.speed_max_hz"


def test_the_band_follows_a_zone_changed_while_armed(page, service):
    page.goto(service.console_url(Role.VIEWER))
    page.wait_for_selector("#role:has-text('role:')")
    with SyncServiceClient.connect(service.url, token=service.token(Role.OPERATOR)) as op:
        op.drive(lease_ms=1500)
        op.call("pen.set_zone", zone="crown")
        op.call("pen.set_setpoints", depth_mm=0.4, speed_hz=90, duty_pct=40, period_ms=120)
        op.call("pen.arm")
        crown = op.call("pen.state")["zone_window"]
        page.wait_for_function(BAND, arg=crown)
        op.call("pen.set_zone", zone="hairline")  # allowed while armed: no state change
        hairline = op.call("pen.state")["zone_window"]
        assert hairline != crown
        page.wait_for_function(BAND, arg=hairline)  # told, before any start
        armed_shown = page.evaluate("app.window")
        op.call("pen.set_setpoints", depth_mm=0.32, speed_hz=80, duty_pct=35, period_ms=120)
        op.call("pen.start")
        page.wait_for_selector("#state[data-state=running]")
        # frames of the running needle have come and been drawn against the page's band
        page.wait_for_function("() => app.trace.filter((p) => p.running).length >= 10")
        shown = page.evaluate("app.window")
        op.call("pen.stop")
        op.release()
    assert armed_shown == hairline, f"armed: the band of {armed_shown}, the pen is in {hairline}"
    assert shown == hairline, f"the page draws the band of {shown}, the pen runs in {hairline}"


def test_the_band_follows_a_zone_taken_with_its_setpoints_refused(page, service):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    take_control(page)
    page.select_option("#zone", "crown")
    page.click("#apply-btn")
    page.wait_for_function("() => app.window !== null")  # no zone before: no band
    crown = service.pen.zone
    assert page.evaluate("app.window.depth_max_mm") == crown.dermal_ceiling_mm
    # the notification is not what this checks: the page's Apply reads the state again itself
    page.evaluate("() => { const was = onNotification; window.onNotification = (m, p) => "
                  "m === 'pen.zone' ? undefined : was(m, p); }")
    page.select_option("#zone", "hairline")
    page.fill("#sp-depth", "0.7")  # past hairline's ceiling: the setpoints are refused
    page.click("#apply-btn")
    page.wait_for_selector("#message:not([hidden])")
    said = page.inner_text("#message")
    assert service.pen.zone_name == "hairline", said
    hairline = service.pen.zone
    page.wait_for_function(BAND, arg={"depth_max_mm": hairline.dermal_ceiling_mm,
                                      "speed_max_hz": hairline.speed_max_hz})
    assert "depth" in said, said
