// smpdevice web console: plain JS, no libraries, no network beyond this service.
// Text from the service is always set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const QUESTIONS = ["open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection",
  "sunburn", "keloid_tendency"];
const TRACE_S = 10;
const app = { ws: null, ids: 1, pending: new Map(), role: null, me: null, state: null,
  window: null, trace: [], traceDirty: false, heartbeat: null, identity: null, driving: false };

// ---------------------------------------------------------------- connection
function token() {
  const m = location.hash.match(/token=([A-Za-z0-9_-]+)/);
  if (m) {
    sessionStorage.setItem("smp-token", m[1]);
    history.replaceState(null, "", location.pathname);  // the token leaves the address bar
  }
  return sessionStorage.getItem("smp-token");
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/rpc`);
  app.ws = ws;
  ws.onopen = async () => {
    try {
      const hello = await call("rpc.hello", { token: token() || "", client: "web console" });
      app.role = hello.role; app.me = hello.client_id;
      $("conn").textContent = "connected"; $("role").textContent = `role: ${hello.role}`;
      document.body.dataset.role = hello.role;
      app.identity = await call("pen.identity");
      $("serial").textContent = app.identity.identity ? app.identity.identity.serial : "";
      fillZones(app.identity.zones);
      await call("telemetry.subscribe", { rate_hz: 25 });
      applyState(await call("pen.state"));
      refreshLog();
    } catch (e) { show(`cannot connect: ${e.message}`); }
  };
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = () => {
    $("conn").textContent = "disconnected: retrying"; setState("disconnected");
    for (const [, p] of app.pending) p.reject(new Error("connection closed"));
    app.pending.clear(); stopHeartbeat();
    setTimeout(connect, 1000);
  };
}

function call(method, params = {}) {
  return new Promise((resolve, reject) => {
    if (!app.ws || app.ws.readyState !== WebSocket.OPEN) {
      reject(new Error("not connected")); return;
    }
    const id = app.ids++;
    app.pending.set(id, { resolve, reject });
    app.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
  });
}

function onMessage(m) {
  if (m.method) { onNotification(m.method, m.params); return; }
  const p = app.pending.get(m.id);
  if (!p) return;
  app.pending.delete(m.id);
  if (m.error) p.reject(Object.assign(new Error(m.error.message),
    { code: m.error.code, data: m.error.data }));
  else p.resolve(m.result);
}

async function act(fn) {
  try { const r = await fn(); hide(); return r; } catch (e) { show(e.message); return null; }
}

function show(text) { $("message").textContent = text; $("message").hidden = false; }
function hide() { $("message").hidden = true; }

// ---------------------------------------------------------------- E-stop
function estop() {
  const started = performance.now();
  call("pen.estop").then((r) => {
    document.body.dataset.estopMs = String(performance.now() - started);
    show(`E-stop ${r.confirmed ? "confirmed by the pen" : "latched (pen did not confirm: it stops by its own lease)"}`);
  }).catch((e) => show(`E-stop: ${e.message}`));
}
// On press, as a hardware E-stop acts: not on release, and ahead of the button's repaint.
$("estop").addEventListener("pointerdown", (ev) => { if (ev.button === 0) estop(); });
// A keyboard activation of the focused button (Enter) arrives as a click without a pointer.
$("estop").addEventListener("click", (ev) => { if (ev.detail === 0) estop(); });
document.addEventListener("keydown", (ev) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
  if (ev.key === "Escape" || (ev.key === " " && !typing)) { ev.preventDefault(); estop(); }
});

// ---------------------------------------------------------------- state
function setState(state) {
  app.state = state; $("state").textContent = state; $("state").dataset.state = state;
}

function applyState(s) {
  setState(s.state);
  app.window = s.zone_window; app.traceDirty = true;
  showDriver(s.driver);
  showFault(s.state, s.last_fault);
  if (s.session && s.session.running === false && s.session.outcome) {
    /* a finished session stays in the runner's result box */
  }
}

function showDriver(client) {
  app.driving = client !== null && client === app.me;
  $("driver").textContent = client ? (app.driving ? "you drive the pen" : `driven by ${client}`)
    : "nobody drives the pen";
  if (!app.driving) stopHeartbeat();
}

function showFault(state, reason) {
  const latched = state === "fault" || state === "estop";
  $("fault-banner").hidden = !latched;
  if (!latched) return;
  $("fault-text").textContent = `${state.toUpperCase()}: ${reason || "latched"}`;
  const tech = app.role === "technician";
  $("clear-box").hidden = !tech;
  $("clear-hint").textContent = tech ? "" : "A technician must clear it.";
}

function onNotification(method, p) {
  if (method === "pen.telemetry") { onTelemetry(p); return; }
  if (method === "pen.state") {
    setState(p.new); showFault(p.new, p.last_fault || p.reason);
    if (p.new !== "running") call("pen.state").then(applyState).catch(() => {});
  } else if (method === "pen.fault") { showFault(p.state, p.reason); }
  else if (method === "pen.driver") { showDriver(p.client); if (!p.client) show(`driver: ${p.reason}`); }
  else if (method === "session.progress") { onProgress(p); }
  else if (method === "session.pass") { onPass(p); }
  else if (method === "session.result") { onResult(p); refreshLog(); }
}

// ---------------------------------------------------------------- footswitch
// Pressed or released, from the pen's telemetry; the mode (required: the pen stops the needle
// when it goes up; optional; off) is the station's, from pen.identity.
function showFootswitch(pressed) {
  const mode = app.identity && app.identity.footswitch;
  const box = $("footswitch");
  box.dataset.footswitch = pressed ? "pressed" : "released";
  box.textContent = `footswitch: ${pressed ? "pressed" : "released"}${mode ? ` (${mode})` : ""}`;
}

// How a pass ended, in words (the code stays in data-outcome and in the exports).
const PASS_OUTCOMES = {
  completed: "completed",
  stopped: "stopped by the technician",
  fault: "fault: the pen latched a fault",
  estop: "E-stop",
  link_lost: "pen lost: the pen stopped the needle by itself",
  controller_crashed: "the controller stopped; recorded on its next start",
  log_error: "stopped: the log could not record the pass",
  footswitch_released: "footswitch released: the pen stopped the needle",
};
function passOutcomeText(outcome) { return PASS_OUTCOMES[outcome] || outcome; }
function passOutcomeClass(outcome) {
  if (outcome === "completed") return "completed";
  return outcome === "stopped" || outcome === "footswitch_released" ? "stopped" : "failed";
}

// ---------------------------------------------------------------- traces
function onTelemetry(t) {
  const now = performance.now() / 1000;
  app.trace.push({ at: now, depth: t.depth_mm, speed: t.speed_hz, running: t.needle_running });
  app.traceDirty = true;
  while (app.trace.length && app.trace[0].at < now - TRACE_S) app.trace.shift();
  if (app.state !== t.state.toLowerCase() && t.state === "ESTOP") setState("estop");
  showFootswitch(t.footswitch);
  const rows = [["state (pen)", t.state], ["needle", t.needle_running ? "running" : "stopped"],
    ["depth mm", t.depth_mm === null ? "uncalibrated" : t.depth_mm.toFixed(3)],
    ["speed Hz", t.speed_hz.toFixed(1)], ["current A", t.current_a.toFixed(2)],
    ["temp °C", t.temp_c.toFixed(1)], ["impressions", t.impressions],
    ["lease ms", t.lease_remaining_ms], ["footswitch", t.footswitch ? "pressed" : "released"],
    ["faults", t.faults.join(", ") || "none"]];
  const body = $("figures"); body.replaceChildren();
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    for (const x of [k, v]) { const td = document.createElement("td"); td.textContent = x; tr.append(td); }
    body.append(tr);
  }
  document.body.dataset.needle = t.needle_running ? "running" : "stopped";
}

function drawTrace(canvas, key, lo, hi, band) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const y = (v) => h - ((v - lo) / (hi - lo)) * h;
  if (band) {
    g.fillStyle = "rgba(40,170,90,.15)";
    g.fillRect(0, y(band[1]), w, y(band[0]) - y(band[1]));
    g.strokeStyle = "#2a7"; g.setLineDash([4, 4]);
    for (const v of band) { g.beginPath(); g.moveTo(0, y(v)); g.lineTo(w, y(v)); g.stroke(); }
    g.setLineDash([]);
  }
  const now = performance.now() / 1000;
  g.strokeStyle = "#06c"; g.lineWidth = 2; g.beginPath();
  let first = true;
  for (const p of app.trace) {
    if (p[key] === null || p[key] === undefined) continue;
    const x = w - ((now - p.at) / TRACE_S) * w;
    if (first) { g.moveTo(x, y(p[key])); first = false; } else g.lineTo(x, y(p[key]));
  }
  g.stroke();
  g.fillStyle = "#555"; g.font = "11px system-ui";
  g.fillText(String(hi), 2, 11); g.fillText(String(lo), 2, h - 2);
}

// Redraw only when a frame arrived since the last paint: a software-rendered canvas repainted
// 60 times a second keeps the page's one thread busy, and an E-stop answer waits behind it.
function frame() {
  requestAnimationFrame(frame);
  if (!app.traceDirty) return;
  app.traceDirty = false;
  const wdw = app.window;
  drawTrace($("depth-canvas"), "depth", 0, 1.0,
    wdw ? [wdw.depth_min_mm, wdw.depth_max_mm] : null);
  drawTrace($("speed-canvas"), "speed", 0, 160,
    wdw ? [wdw.speed_min_hz, wdw.speed_max_hz] : null);
}
requestAnimationFrame(frame);

// ---------------------------------------------------------------- driving (dead-man)
async function takeControl() {
  const r = await act(() => call("pen.drive", { lease_ms: 1500 }));
  if (!r) return false;
  stopHeartbeat();
  app.heartbeat = setInterval(() => call("pen.heartbeat").catch(heartbeatRefused), 300);
  showDriver(app.me);
  return true;
}
// Rate limited (-32005) or busy (-32006) means "not now": beat on; the service's lease
// decides whether this console still drives. Any other refusal (no longer the driver) ends them.
// The codes are smpdevice/service/limits.py RATE_LIMITED and BUSY (a static page imports no
// Python; a test checks they agree).
const NOT_REFUSALS = [-32005, -32006];
function heartbeatRefused(e) { if (!NOT_REFUSALS.includes(e.code)) stopHeartbeat(); }
function stopHeartbeat() { if (app.heartbeat) { clearInterval(app.heartbeat); app.heartbeat = null; } }

function fillZones(zones) {
  const sel = $("zone"); sel.replaceChildren();
  for (const name of Object.keys(zones)) {
    const o = document.createElement("option"); o.value = name; o.textContent = name; sel.append(o);
  }
  sel.value = "crown";
}

$("drive-btn").onclick = takeControl;
$("cal-drive").onclick = takeControl;
$("release-btn").onclick = () => act(async () => { stopHeartbeat(); await call("pen.release"); });
$("apply-btn").onclick = () => act(async () => {
  const zone = await call("pen.set_zone", { zone: $("zone").value });
  await call("pen.set_setpoints", { depth_mm: +$("sp-depth").value, speed_hz: +$("sp-speed").value,
    duty_pct: +$("sp-duty").value, period_ms: +$("sp-period").value });
  applyState(await call("pen.state"));
  return zone;
});
$("arm-btn").onclick = () => act(() => call("pen.arm"));
$("start-btn").onclick = () => act(() => call("pen.start"));
$("stop-btn").onclick = () => act(() => call("pen.stop"));
$("disarm-btn").onclick = () => act(() => call("pen.disarm"));
$("clear-btn").onclick = () => act(async () => {
  await call("pen.clear_faults", { reason: $("clear-reason").value });
  $("clear-reason").value = "";
  applyState(await call("pen.state"));
});

// ---------------------------------------------------------------- tabs
for (const b of document.querySelectorAll(".tab")) {
  b.onclick = () => {
    for (const x of document.querySelectorAll(".tab")) x.classList.toggle("active", x === b);
    for (const s of ["live", "session", "calibration", "log"]) $(`tab-${s}`).hidden = s !== b.dataset.tab;
  };
}

// ---------------------------------------------------------------- session runner
(function buildScreening() {
  const form = $("screening");
  for (const q of QUESTIONS) {
    const div = document.createElement("div"); div.className = "q";
    const label = document.createElement("span"); label.textContent = q.replace(/_/g, " ") + "?";
    div.append(label);
    for (const [text, value] of [["yes", "true"], ["no", "false"]]) {
      const l = document.createElement("label"); const r = document.createElement("input");
      r.type = "radio"; r.name = q; r.value = value; r.id = `scr-${q}-${text}`;
      l.append(r, ` ${text}`); div.append(l);
    }
    form.append(div);
  }
})();

function screeningAnswers() {
  const out = {};
  for (const q of QUESTIONS) {
    const r = document.querySelector(`input[name=${q}]:checked`);
    if (r) out[q] = r.value === "true";  // unanswered stays absent: the service refuses it
  }
  return out;
}

$("profile-file").onchange = async (ev) => {
  const f = ev.target.files[0];
  if (f) $("profile-text").value = await f.text();
};
$("demo-profile-btn").onclick = async () => {
  $("profile-text").value = await (await fetch("demo-profile.yaml")).text();
};
function profileParams() {
  const text = $("profile-text").value;
  return { profile: text, format: text.trim().startsWith("{") ? "json" : "yaml" };
}
$("check-btn").onclick = () => act(async () => {
  const r = await call("session.check", profileParams());
  const box = $("check-result"); box.replaceChildren();
  const p = document.createElement("div");
  if (r.ok) {
    p.className = "ok";
    p.textContent = `profile ok: ${r.session_kind}, client ${r.client_ref}, ${r.passes.length} passes`;
  } else {
    p.className = "issues"; p.textContent = r.message;
  }
  box.append(p);
});
$("session-start").onclick = () => act(async () => {
  if (!app.driving && !(await takeControl())) return;
  $("passes").replaceChildren(); $("session-result").replaceChildren();
  const params = { ...profileParams(), screening: screeningAnswers(), technician: $("technician").value };
  if ($("quick").checked) params.quick_pass_s = 0.4;
  const r = await call("session.run", params);
  const planned = r.planned_passes;
  for (let i = 0; i < planned; i++) {
    const li = document.createElement("li"); li.id = `pass-${i}`; li.textContent = "planned";
    $("passes").append(li);
  }
  document.body.dataset.session = r.session_id;
});
$("session-stop").onclick = () => act(() => call("session.stop"));

function onProgress(p) {
  const li = $(`pass-${p.index}`); if (!li) return;
  li.className = "running";
  li.textContent = `${p.zone}: ${Math.round(p.fraction * 100)} %  (${p.impressions} impressions)`;
}
function onPass(p) {
  const li = $(`pass-${p.index}`); if (!li) return;
  li.className = passOutcomeClass(p.outcome);
  li.dataset.outcome = p.outcome;
  li.textContent = `${p.zone}: ${passOutcomeText(p.outcome)}${p.detail ? " — " + p.detail : ""}`;
}
function onResult(r) {
  const box = $("session-result"); box.replaceChildren();
  const h = document.createElement("p");
  h.className = r.complete ? "outcome-complete" : "outcome-incomplete";
  h.id = "session-outcome";
  h.textContent = r.complete ? `Session ${r.session_id} complete`
    : `INCOMPLETE session ${r.session_id}: ${r.outcome}${r.error ? " — " + r.error : ""}`;
  const pre = document.createElement("pre"); pre.textContent = r.aftercare;
  box.append(h, pre);
  document.body.dataset.sessionOutcome = r.outcome;
}

// ---------------------------------------------------------------- calibration wizard
function calOut(x) { $("cal-out").textContent = typeof x === "string" ? x : JSON.stringify(x, null, 2); }
$("cal-auto").onclick = () => act(async () => {
  calOut("calibrating... (about half a minute)");
  const r = await call("calibration.auto", { technician: $("cal-tech").value || "technician" });
  calOut(r.report); app.identity = await call("pen.identity");
});
$("cal-begin").onclick = () => act(async () => calOut(await call("calibration.begin")));
$("cal-move").onclick = () => act(async () => calOut(await call("calibration.move", { actuator_mm: +$("cal-mm").value })));
$("cal-gauge").onclick = () => act(async () => calOut(await call("calibration.read_gauge")));
$("cal-end").onclick = () => act(async () => calOut(await call("calibration.end")));

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

connect();
