// smpdevice web console: the pass log and a session's report (printable).
"use strict";

// ---------------------------------------------------------------- pass log and report
async function refreshLog() {
  const r = await act(() => call("sessions.list"));
  if (!r) return;
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

