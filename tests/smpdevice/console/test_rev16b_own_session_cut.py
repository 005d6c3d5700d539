"""Review 16b: docs/console.md "The passes and result shown are this page's session only:
another client's session ... its end is one line below them". A page whose connection closes
after its session.run went but before the answer reached it (a network cut) never learned its
session's id: it once called its own session "Another client's session ... ended", or said
nothing of it. Now it claims the session its old connection started (the service's status
names that client; notifications held while the answer was awaited carry the id) and shows
how it ended, from the service or the pass log, once it is connected again."""

from __future__ import annotations

import time
from importlib import resources

from smpdevice.service.auth import Role
from smpdevice.service.client import SyncServiceClient
from smpdevice.sessions.screening import QUESTIONS

from .conftest import pytestmark, take_control  # noqa: F401

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()

# The page's connection closes when session.run's answer (or, with `after`, the first
# notification of that method after it) arrives: the answer never reaches the page.
CUT = """([after]) => {
    const ws = app.ws, onmessage = ws.onmessage, send = ws.send;
    let runId = null, answered = false;
    ws.send = function (text) {
      const m = JSON.parse(text); if (m.method === 'session.run') runId = m.id;
      return send.call(this, text);
    };
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (runId !== null && m.id === runId) {
        answered = true;
        if (!after) ws.close();
        return;
      }
      if (answered && after && m.method === after) { onmessage(ev); ws.close(); return; }
      onmessage(ev);
    };
    document.getElementById('session-start').click(); }"""


def _until(pred, what, page, limit_s=15.0):
    end = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        page.wait_for_timeout(20)


def _ready(page, service):
    page.goto(service.console_url(Role.TECHNICIAN))
    page.wait_for_selector("#role:has-text('role: technician')")
    take_control(page)
    page.click("button[data-tab=session]")
    page.fill("#profile-text", PROFILE)
    for q in QUESTIONS:
        page.check(f"#scr-{q}-no")
    page.fill("#technician", "page tech")


def _ended(service, page) -> str:
    with SyncServiceClient.connect(service.url, token=service.token(Role.VIEWER),
                                   role=Role.VIEWER) as viewer:
        def ended() -> list:
            listed = viewer.call("sessions.list")["sessions"]
            state = viewer.call("pen.state").get("session") or {}
            return listed if listed and not state.get("running") else []
        _until(ended, "the session started and stopped", page)
        return ended()[0]["session_id"]


def _claimed(page, sid) -> dict:
    """What the page shows of `sid` once it says a word on its end."""
    page.wait_for_selector("#conn:has-text('connected')")
    _until(lambda: page.is_visible("#other-session")
           or sid in (page.text_content("#session-result") or ""), "a word on its end", page, 5.0)
    return {"other": page.is_visible("#other-session") and page.text_content("#other-session"),
            "outcome": page.text_content("#session-outcome") or "",
            "message": page.text_content("#message") or "",
            "pass0": page.get_attribute("#pass-0", "data-outcome"),
            "passes": page.text_content("#passes")}


def test_this_pages_own_session_is_never_called_another_clients(page, service, sim):
    _ready(page, service)
    page.evaluate(CUT, [None])
    sid = _ended(service, page)
    shown = _claimed(page, sid)
    assert not shown["other"], f"this page's session {sid} is called: {shown['other']!r}"
    assert "INCOMPLETE" in shown["outcome"]
    assert "the connection closed as the session started" in shown["message"]
    assert shown["pass0"], shown["passes"]


def test_its_passes_seen_before_the_cut_are_shown(page, service, sim):
    """Cut after the session's first progress: the held notification names the session."""
    _ready(page, service)
    page.evaluate(CUT, ["session.progress"])
    sid = _ended(service, page)
    shown = _claimed(page, sid)
    assert not shown["other"], f"this page's session {sid} is called: {shown['other']!r}"
    assert "INCOMPLETE" in shown["outcome"]
    assert "the connection closed as the session started" in shown["message"]
    assert shown["pass0"], shown["passes"]
