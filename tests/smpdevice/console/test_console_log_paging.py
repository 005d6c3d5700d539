"""The console's pass log pages through every session (sessions.list `start`/`limit`), newest
first, saying "sessions N-M of T": a clinic with more sessions than one answer holds (the
service's cap, LIST_PAGE_MAX) reaches the older ones. Chromium against a real service whose
data directory holds more than one page; `?log_page=3` asks pages of 3 (the service lets a
client ask for fewer than its cap), so 7 sessions make 3 pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.limits import LIST_PAGE_MAX
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.records.test_passlog import T0, begin, open_session, stats
from tests.smpdevice.service.conftest import PEN_LEASE_MS

from .conftest import pytestmark  # noqa: F401  (skip without chromium)

SESSIONS = 7
REPORT_JS = Path(__file__).resolve().parents[3] / "smpdevice" / "ui" / "web" / "report.js"


@pytest.fixture
def paged(sim, data_dir) -> Iterator[tuple[ServiceHandle, list[str]]]:
    """A service whose data directory's pass log holds SESSIONS closed sessions (oldest
    first, as `ids`), written before it starts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ids = _closed_sessions(data_dir / "passlog.sqlite", SESSIONS, "C")
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim))
    with ServiceHandle(options) as handle:
        yield handle, ids


def _open_log(page, handle: ServiceHandle, query: str = "") -> None:
    page.goto(handle.console_url(Role.VIEWER).replace("/#token=", f"/{query}#token="))
    page.wait_for_selector("#role:has-text('role:')")
    page.click("button[data-tab=log]")


def _shown(page, says: str) -> list[str]:
    """Once the pager says `says`: the sessions listed, top to bottom."""
    page.wait_for_selector(f"#log-page:text-is('{says}')")
    return page.eval_on_selector_all("#sessions-table tr",
                                     "rows => rows.map(r => r.dataset.session)")


def _enabled(page) -> tuple[bool, bool]:
    return page.is_enabled("#log-newer"), page.is_enabled("#log-older")


def test_older_and_newer_page_through_every_session(page, paged):
    handle, ids = paged
    _open_log(page, handle, "?log_page=3")
    assert _shown(page, "sessions 5-7 of 7") == ids[6:3:-1]  # the newest page, newest first
    assert _enabled(page) == (False, True)
    page.click("#log-older")
    assert _shown(page, "sessions 2-4 of 7") == ids[3:0:-1]
    assert _enabled(page) == (True, True)
    page.click("#log-older")
    assert _shown(page, "sessions 1-1 of 7") == [ids[0]]  # the oldest: a shorter page
    assert _enabled(page) == (True, False)
    page.locator(f"tr[data-session='{ids[0]}']").click()  # an old session's report opens
    page.wait_for_selector(f"body[data-report='{ids[0]}']")
    assert "C-0000" in page.inner_text("#report")
    page.click("#log-newer")
    assert _shown(page, "sessions 2-4 of 7") == ids[3:0:-1]  # the same pages, back again
    page.click("#log-newer")
    assert _shown(page, "sessions 5-7 of 7") == ids[6:3:-1]
    assert _enabled(page) == (False, True)
    page.reload()  # the page size outlives a reload (the token leaves the address, not it)
    page.click("button[data-tab=log]")
    assert _shown(page, "sessions 5-7 of 7") == ids[6:3:-1]


# Not a page size of 1-500 written as a plain decimal: the default, the service's cap. Number()
# read "0x3", "3e0", " 3", "3." and "+3" as pages of 3. One service and page for them all (each
# case its own browser context and service cost the realtime pass about 1.5 s).
NOT_A_PAGE_SIZE = ["", "?log_page=0", "?log_page=501", "?log_page=2.5", "?log_page=x",
                   "?log_page=0x3", "?log_page=3e0", "?log_page=%203", "?log_page=3.",
                   "?log_page=%2B3", "?log_page=03"]


def test_by_default_a_page_is_the_services_cap(page, paged):
    handle, ids = paged
    for query in NOT_A_PAGE_SIZE:
        _open_log(page, handle, query)
        assert _shown(page, "sessions 1-7 of 7") == ids[::-1], query
        assert _enabled(page) == (False, False), query


def test_the_consoles_cap_is_the_services():
    found = re.search(r"const LOG_PAGE_MAX = (\d+);", REPORT_JS.read_text())
    assert found is not None and int(found.group(1)) == LIST_PAGE_MAX


def _add_sessions(data_dir: Path, n: int, pen: str = "SMP-0002") -> list[str]:
    """n closed sessions in pen `pen`'s own log beside the station's (opened now: the newest)."""
    return _closed_sessions(data_dir / f"passlog-{pen}.sqlite", n, "N")


def _closed_sessions(path: Path, n: int, client: str) -> list[str]:
    """n closed sessions of one completed pass each in the pass log at `path`, oldest first."""
    ids = []
    with PassLog(path) as log:
        for i in range(n):
            sid = open_session(log, client_ref=f"{client}-{i:04d}")
            log.end_pass(begin(log, sid, 0), outcome="completed", stats=stats(), ended_at=T0)
            log.close_session(sid, closed_at=T0 + timedelta(minutes=5),
                              summary={"outcome": "completed"})
            ids.append(sid)
    return ids


def _click_and_show(page, button: str) -> list[str]:
    said = page.inner_text("#log-page")
    page.click(button)
    page.wait_for_function("said => document.querySelector('#log-page').textContent !== said",
                           arg=said)
    return _shown(page, page.inner_text("#log-page"))


def test_walking_newer_shows_the_sessions_that_came_meanwhile(page, paged, data_dir):
    """Newer jumped to the newest page when the page ON SCREEN said it was near the end: from
    "2-4 of 7", with 3 sessions come meanwhile, it showed "8-10 of 10", never 5-7."""
    handle, ids = paged
    _open_log(page, handle, "?log_page=3")
    _shown(page, "sessions 5-7 of 7")
    page.click("#log-older")
    seen = set(_shown(page, "sessions 2-4 of 7"))
    new = _add_sessions(data_dir, 3)  # three sessions end at other chairs meanwhile
    seen |= set(_click_and_show(page, "#log-newer"))
    assert page.inner_text("#log-page") == "sessions 5-7 of 10"
    seen |= set(_click_and_show(page, "#log-newer"))
    assert page.inner_text("#log-page") == "sessions 8-10 of 10"
    assert _enabled(page) == (False, True)
    assert seen == set(ids[1:] + new)  # every session after the first page, none skipped
    more = _add_sessions(data_dir, 1, pen="SMP-0003")  # the newest page follows new ones
    page.click("#refresh-log")
    assert _shown(page, "sessions 9-11 of 11")[0] == more[0]


def test_a_page_past_the_end_after_a_log_is_removed_shows_the_newest(page, paged, data_dir):
    """It said "sessions 8-7 of 7", an empty page, when a pen log left mid-walk."""
    handle, ids = paged
    _add_sessions(data_dir, 6)
    _open_log(page, handle, "?log_page=3")
    _shown(page, "sessions 11-13 of 13")
    page.click("#log-older")
    _shown(page, "sessions 8-10 of 13")
    for f in data_dir.glob("passlog-SMP-0002.sqlite*"):
        f.unlink()  # the pen's log moved elsewhere
    page.click("#refresh-log")
    assert _shown(page, "sessions 5-7 of 7") == ids[6:3:-1]
    assert _enabled(page) == (False, True)


def test_an_answer_to_an_earlier_click_that_comes_late_is_not_shown(page, paged):
    """Two quick clicks send two sessions.list calls; the first's answer came last and was
    shown, the page then contradicting the last click."""
    handle, ids = paged
    _open_log(page, handle, "?log_page=3")
    _shown(page, "sessions 5-7 of 7")
    page.click("#log-older")
    _shown(page, "sessions 2-4 of 7")
    page.evaluate("""() => {  // hold the next sessions.list answer until release()
      const real = window.call; let held = false;
      window.call = (method, params) => {
        if (method !== "sessions.list" || held) return real(method, params);
        held = true;
        return new Promise((resolve) => {
          window.release = () => { const answer = real(method, params); resolve(answer);
                                   return answer; };
        });
      };
    }""")
    page.click("#log-older")  # asks "1-1", held
    page.click("#log-newer")  # asks "5-7", answered
    assert _shown(page, "sessions 5-7 of 7") == ids[6:3:-1]
    page.evaluate("async () => { await window.release(); "
                  "await new Promise((done) => setTimeout(done, 0)); }")
    assert page.inner_text("#log-page") == "sessions 5-7 of 7"
