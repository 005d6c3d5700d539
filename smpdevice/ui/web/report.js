// smpdevice web console: the pass log and a session's report (printable).
"use strict";

// ---------------------------------------------------------------- pass log and report
// The log is shown a page at a time, newest first: sessions.list pages the sessions of every
// log, indexed oldest first by opening time (0 is the oldest), by `start` and `limit`. New
// sessions get the highest indexes, so an older page keeps its sessions while they come; only a
// session that sorts before it (a clock set back, a pen log copied in) or a log removed shifts
// it, by that many (docs/console.md). `?log_page=N` in the console's address asks pages of N
// sessions, N a plain decimal from 1 to the service's cap; anything else is the cap.
const LOG_PAGE_MAX = 500;  // smpdevice/service/limits.py LIST_PAGE_MAX (a test checks they agree)
// start null: the newest page; asked: the number of the latest call (older answers are stale)
const logPage = { size: logPageSize(), start: null, shown: null, asked: 0 };

function logPageSize() {
  const asked = new URLSearchParams(location.search).get("log_page");
  const plain = asked !== null && /^[1-9][0-9]{0,2}$/.test(asked);  // not "0x3", "3e0", " 3"
  return plain && Number(asked) <= LOG_PAGE_MAX ? Number(asked) : LOG_PAGE_MAX;
}

async function refreshLog() {
  const params = { limit: logPage.size };
  if (logPage.start !== null) params.start = logPage.start;
  const asked = ++logPage.asked;
  const r = await ask(() => call("sessions.list", params));
  if (!r || asked !== logPage.asked) return;  // a later click's answer is (or will be) shown
  const n = r.sessions.length;
  if (n === 0 && r.total > 0 && logPage.start !== null) {  // past the end: sessions removed
    logPage.start = null; return refreshLog();
  }
  // the page reaching the newest session follows new ones (decided on this answer's total)
  if (r.start + n >= r.total) logPage.start = null;
  logPage.shown = r;
  $("log-page").textContent = r.total === 0 ? "no sessions yet"
    : `sessions ${r.start + 1}-${r.start + n} of ${r.total}`;
  $("log-older").disabled = r.start <= 0;
  $("log-newer").disabled = r.start + n >= r.total;
  const body = $("sessions-table"); body.replaceChildren();
  for (const s of r.sessions.slice().reverse()) {
    const tr = document.createElement("tr"); tr.dataset.session = s.session_id;
    const outcome = s.summary ? s.summary.outcome : "open (incomplete)";
    for (const x of [s.session_id, s.opened_at, s.client_ref, s.session_kind, s.pass_count, outcome]) {
      const td = document.createElement("td"); td.textContent = x; tr.append(td);
    }
    tr.onclick = () => showReport(s.session_id);
    body.append(tr);
  }
}
$("refresh-log").onclick = refreshLog;
// Older: the page ending just before this one (a negative start: the shorter first page).
$("log-older").onclick = () => {
  if (!logPage.shown) return;
  logPage.start = logPage.shown.start - logPage.size; refreshLog();
};
// Newer: the page starting just after the last session shown, never further: sessions that
// came meanwhile are walked through, not skipped (refreshLog follows the newest at the end).
$("log-newer").onclick = () => {
  if (!logPage.shown) return;
  logPage.start = logPage.shown.start + logPage.shown.sessions.length; refreshLog();
};
$("verify-log").onclick = () => act(async () => {
  const r = await call("sessions.verify");
  $("verify-out").textContent = r.ok ? `chain ok: ${r.records} records` : `BROKEN: ${r.problem}`;
});
$("print-btn").onclick = () => window.print();

function el(tag, text, cls) {
  const e = document.createElement(tag); if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls; return e;
}

async function showReport(id) {
  const r = await act(() => call("sessions.show", { session_id: id }));
  if (!r) return;
  const s = r.session, rep = $("report"); rep.replaceChildren();
  const outcome = s.summary ? s.summary.outcome : "open: incomplete";
  rep.append(el("h2", `Session report ${s.session_id}`));
  rep.append(el("p", `${s.session_kind} for client ${s.client_ref}, technician ${s.technician}, pen ${s.pen_serial} (firmware ${s.firmware_version}), calibration ${s.calibration_id}${s.simulated ? ", SIMULATED pen" : ""}.`));
  rep.append(el("p", `Opened ${s.opened_at}; closed ${s.closed_at || "never (incomplete)"}; outcome: ${outcome}.`,
    s.summary && s.summary.outcome === "completed" ? "outcome-complete" : "outcome-incomplete"));
  const t = el("table", undefined, "list");
  const head = el("tr");
  for (const x of ["#", "zone", "outcome", "depth set mm", "depth min/mean/max mm", "speed Hz", "impressions"]) head.append(el("th", x));
  t.append(head);
  for (const p of r.passes) {
    const tr = el("tr");
    if (p.outcome) { tr.dataset.outcome = p.outcome; tr.className = passOutcomeClass(p.outcome); }
    const f = (v) => (v === null || v === undefined ? "-" : Number(v).toFixed(3));
    for (const x of [p.number || p.index + 1, p.zone, p.outcome ? passOutcomeText(p.outcome) : "in progress", p.depth_mm,
      `${f(p.depth_min_mm)} / ${f(p.depth_mean_mm)} / ${f(p.depth_max_mm)}`,
      p.speed_burst_hz ? Number(p.speed_burst_hz).toFixed(1) : "-", p.impressions]) tr.append(el("td", String(x)));
    t.append(tr);
  }
  rep.append(t);
  const c = el("canvas"); c.width = 640; c.height = 200; c.id = "report-plot";
  rep.append(el("h3", "Depth per pass against each zone's window"), c);
  plotPasses(c, r.passes);
  if (r.aftercare) rep.append(el("h3", "Aftercare"), el("pre", r.aftercare));
  rep.append(el("h3", "Receipt"), el("pre", r.receipt || "none (the session is not closed)"));
  $("print-btn").hidden = false;
  document.body.dataset.report = s.session_id;
}

function plotPasses(canvas, passes) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height, hi = 1.0;
  const zones = (app.identity && app.identity.zones) || {};
  const y = (v) => h - 14 - (v / hi) * (h - 24);
  const step = w / Math.max(passes.length, 1);
  g.font = "11px system-ui";
  passes.forEach((p, i) => {
    const x = i * step + step / 2, z = zones[p.zone];
    if (z) {
      g.fillStyle = "rgba(40,170,90,.18)";
      g.fillRect(x - step / 3, y(z.dermal_ceiling_mm), (2 * step) / 3, y(z.epidermal_floor_mm) - y(z.dermal_ceiling_mm));
    }
    if (p.depth_min_mm !== null && p.depth_max_mm !== null) {
      g.strokeStyle = "#06c"; g.lineWidth = 3; g.beginPath();
      g.moveTo(x, y(p.depth_min_mm)); g.lineTo(x, y(p.depth_max_mm)); g.stroke();
      g.fillStyle = "#06c"; g.fillRect(x - 6, y(p.depth_mean_mm) - 1, 12, 3);
    }
    g.fillStyle = "#333"; g.fillText(`${i + 1} ${p.zone}`, x - step / 3, h - 2);
  });
}

