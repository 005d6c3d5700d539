// smpdevice web console: plain JS, no libraries, no network beyond this service.
// Text from the service is always set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const QUESTIONS = ["open_sores", "eczema", "dermatitis", "psoriasis_flare", "infection",
  "sunburn", "keloid_tendency"];
const TRACE_S = 10;
const app = { ws: null, trial: null, retry: null, ids: 1, role: null, me: null, state: null,
  window: null, trace: [], traceDirty: false, heartbeat: null, identity: null, driving: false };

// ---------------------------------------------------------------- connection (link.js)
// The service's cap on one request, in UTF-8 bytes (smpdevice/service/limits.py
// MAX_MESSAGE_BYTES; a test checks they agree). Past 4 MiB the service closes the connection,
// which for a driving page is the dead-man: a request over the cap is never sent.
const MAX_MESSAGE_BYTES = 256 * 1024;
function kib(bytes) { return Math.ceil(bytes / 1024); }
async function act(fn) {
  try { const r = await fn(); hide(); return r; } catch (e) { showError(e); return null; }
}
// A call nobody clicked for (the log refreshed at connect or after a session): its error is
// shown, but its success leaves the message as it is, so a refusal the technician must read
// (a clear without a reason) is not wiped by an answer that happened to come after it.
async function ask(fn) {
  try { return await fn(); } catch (e) { showError(e); return null; }
}
// A call cut by a connection this page swapped for another token's (hashchange) says nothing:
// the page works on under that token.
function showError(e) { if (!e.givenUp) show(e.message); }

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
// The keys act before any control sees them (capture phase on the window): a focused radio,
// checkbox, file picker, list or button never takes Space or Esc for itself. Only a field
// with a text cursor keeps Space (names have spaces). The page has no <select> drop-down: the
// browser gives Esc to an open drop-down's popup, never to the page (the zone is a list box).
const TEXT_ENTRY = ["text", "search", "email", "url", "tel", "password", "number"];
function typingIn(el) {
  if (!el) return false;
  if (el.isContentEditable || el.tagName === "TEXTAREA") return true;
  return el.tagName === "INPUT" && TEXT_ENTRY.includes(el.type);
}
function isSpace(ev) { return ev.key === " " || ev.key === "Spacebar" || ev.code === "Space"; }
function estopKey(ev) {
  return ev.key === "Escape" || ev.key === "Esc" || (isSpace(ev) && !typingIn(ev.target));
}
window.addEventListener("keydown", (ev) => {
  if (!estopKey(ev)) return;
  ev.preventDefault(); ev.stopImmediatePropagation();
  if (!ev.repeat) estop();  // a key held down is one E-stop, not thirty a second
}, true);
// Space's own action (tick a radio, open the file picker, press a button) comes with keyup:
// none of it happens on the way to an E-stop.
for (const type of ["keyup", "keypress"]) {
  window.addEventListener(type, (ev) => {
    if (estopKey(ev)) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);
}

// ---------------------------------------------------------------- state
const LOST = ["disconnected", "connecting"];  // no pen (reconnecting): nothing from it is known
function setState(state) {
  app.state = state; $("state").textContent = state; $("state").dataset.state = state;
  if (LOST.includes(state)) markStale("the pen (or this page's link to the service) is lost");
}

function applyState(s) {
  setState(s.state);
  applyWindow(s);
  showDriver(s.driver);
  showFault(s.state, s.last_fault);
}

// The active zone's window (green band), from pen.state or a pen.zone notification.
function applyWindow(s) { app.window = s.zone_window; app.traceDirty = true; }

// Who drives, and why nobody does (`reason`: "ws-3 released", a lease that ran out) beside it,
// not in the message line: another client letting go never wipes a refusal shown there.
function showDriver(client, reason) {
  app.driving = client !== null && client === app.me;
  $("driver").textContent = client ? (app.driving ? "you drive the pen" : `driven by ${client}`)
    : `nobody drives the pen${reason ? ` (${reason})` : ""}`;
  if (!app.driving) stopHeartbeat();
}
// This page losing the pen it took, unasked (a lease that ran out): said in the message line
// too, since its needle stopped. `app.tookPen` is set by "Take control", unset by "Release".
function onDriver(p) {
  showDriver(p.client, p.reason);
  if (app.tookPen && !app.driving) { app.tookPen = false; show(`you no longer drive the pen: ${p.reason}`); }
}

function showFault(state, reason) {
  // A lost pen clears nothing: a banner shown stays until the pen is back and says otherwise.
  if (LOST.includes(state)) return;
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
    // running: the zone's window read again too (a zone set while armed is no state change)
    call("pen.state").then(p.new === "running" ? applyWindow : applyState).catch(() => {});
    // a calibration ended or saved, a pen found again (maybe another one): read it again
    if (p.new !== "running" && !LOST.includes(p.new)) loadIdentity().catch(() => {});
  } else if (method === "pen.fault") { showFault(p.state, p.reason); }
  else if (method === "pen.driver") { onDriver(p); }
  else if (method === "pen.zone") { applyWindow(p); }
  else if (method === "session.progress") { onProgress(p); }
  else if (method === "session.pass") { onPass(p); }
  else if (method === "session.result") { onResult(p); refreshLog(); }
}

// ---------------------------------------------------------------- what the pen will not do
// From pen.identity (as `smp info --service` prints it): a pen the station's footswitch mode
// cannot run (the service serves it for reading, clearing and the E-stop only), and a pen
// without a calibration, with why a stored one was not used. Said on the page and at each
// control the service refuses for it; the service still decides every request.
const RUN_CONTROLS = { "arm-btn": "run-refused", "start-btn": "run-refused",
  "session-start": "session-refused" };
const CAL_CONTROLS = { "cal-auto": "cal-refused", "cal-begin": "cal-refused" };
async function loadIdentity() {
  app.identity = await call("pen.identity");
  showPenNotes(app.identity);
  return app.identity;
}
function showPenNotes(ident) {
  const pedal = ident.footswitch_refused, problem = ident.calibration_problem;
  const uncal = !ident.calibration;
  note("pedal-refused", pedal ? `This pen is never run here: ${pedal} Reading it, clearing `
    + "its faults and the E-stop still work." : "");
  // A pen never run here cannot be calibrated here either (the wizard runs it): no advice
  // sending the technician to controls refused for it.
  note("cal-problem", uncal ? `The pen is not calibrated${problem ? `: ${problem.replace(/\.$/, "")}` : ""}.`
    + (pedal ? " It cannot be calibrated here either: calibrating runs the pen (the box above says why)."
      : " Arming and sessions are refused until it is (Calibration tab).") : "");
  $("pen-notes").hidden = !pedal && !uncal;
  const never = pedal ? [`Refused: this pen is never run here: ${pedal}`,
    "Refused: this pen is never run here (it has no footswitch; the box above says why)."]
    : ["", ""];
  const uncalRun = "Refused: the pen is not calibrated; calibrate it first (Calibration tab)";
  refuse(RUN_CONTROLS, ...(pedal ? never : uncal ? [uncalRun, `${uncalRun}.`] : ["", ""]));
  refuse(CAL_CONTROLS, ...never);
}
function note(id, text) { $(id).textContent = text; $(id).hidden = !text; }
// The whole reason on each control (its tooltip, data-refused), a short line below them.
function refuse(controls, why, line) {
  for (const [id, lineId] of Object.entries(controls)) {
    const b = $(id);
    if (b.dataset.title === undefined) b.dataset.title = b.title;
    b.title = why || b.dataset.title;
    if (why) b.dataset.refused = why; else delete b.dataset.refused;
    note(lineId, line);
  }
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
  stopped: "stopped",  // by Stop, the controller or the dead-man: the pass's detail says which
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
// Figures are the pen's only while its frames come: the pen lost, the service's link lost or a
// silence of STALE_MS (the slowest telemetry is 1 Hz) shows them as unknown, never as the last.
const STALE_MS = 3000;
const FIGURES = ["state (pen)", "needle", "depth mm", "speed Hz", "current A", "temp °C",
  "impressions", "lease ms", "footswitch", "faults"];
function showFigures(values) {
  const body = $("figures"); body.replaceChildren();
  FIGURES.forEach((k, i) => {
    const tr = document.createElement("tr");
    for (const x of [k, values[i]]) { const td = document.createElement("td"); td.textContent = x; tr.append(td); }
    body.append(tr);
  });
}
function markStale(why) {
  clearTimeout(app.staleTimer); app.staleTimer = null;
  if (document.body.dataset.needle === "unknown") return;
  showFigures(FIGURES.map(() => "unknown: no telemetry"));
  $("figures-note").textContent = `No telemetry: ${why}. The figures are unknown.`;
  document.body.dataset.needle = "unknown";
  const box = $("footswitch"); box.dataset.footswitch = "unknown";
  box.textContent = "footswitch: ? (no telemetry)";
  app.trace = []; app.traceDirty = true;
}

function onTelemetry(t) {
  clearTimeout(app.staleTimer);
  app.staleTimer = setTimeout(() => markStale(`none for ${STALE_MS / 1000} s`), STALE_MS);
  $("figures-note").textContent = "";
  const now = performance.now() / 1000;
  app.trace.push({ at: now, depth: t.depth_mm, speed: t.speed_hz, running: t.needle_running });
  app.traceDirty = true;
  while (app.trace.length && app.trace[0].at < now - TRACE_S) app.trace.shift();
  if (app.state !== t.state.toLowerCase() && t.state === "ESTOP") setState("estop");
  showFootswitch(t.footswitch);
  showFigures([t.state, t.needle_running ? "running" : "stopped",
    t.depth_mm === null ? "uncalibrated" : t.depth_mm.toFixed(3), t.speed_hz.toFixed(1),
    t.current_a.toFixed(2), t.temp_c.toFixed(1), t.impressions, t.lease_remaining_ms,
    t.footswitch ? "pressed" : "released", t.faults.join(", ") || "none"]);
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
  showDriver(app.me); app.tookPen = true;
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
  // A list box (size 2 or more), never a drop-down: an open drop-down keeps Esc from the page.
  sel.size = Math.max(2, Math.min(Object.keys(zones).length, 6));
}

$("drive-btn").onclick = takeControl;
$("cal-drive").onclick = takeControl;
$("release-btn").onclick = () => act(async () => {
  app.tookPen = false; stopHeartbeat(); await call("pen.release");
});
$("apply-btn").onclick = () => act(async () => {
  // every number read before anything is sent: a field without one changes nothing
  const setpoints = { depth_mm: numberIn("sp-depth"), speed_hz: numberIn("sp-speed"),
    duty_pct: numberIn("sp-duty"), period_ms: numberIn("sp-period") };
  try {
    const zone = await call("pen.set_zone", { zone: $("zone").value });
    await call("pen.set_setpoints", setpoints);
    return zone;
  } finally {  // refused or not: a zone taken with its setpoints refused is the active one
    const s = await call("pen.state").catch(() => null);
    if (s) applyState(s);
  }
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

// ---------------------------------------------------------------- calibration wizard
function calOut(x) { $("cal-out").textContent = typeof x === "string" ? x : JSON.stringify(x, null, 2); }
$("cal-auto").onclick = () => act(async () => {
  calOut("calibrating... (about half a minute)");
  const r = await call("calibration.auto", { technician: $("cal-tech").value });
  calOut(r.report); await loadIdentity();
});
$("cal-begin").onclick = () => act(async () => calOut(await call("calibration.begin")));
$("cal-move").onclick = () => act(async () => calOut(await call("calibration.move", { actuator_mm: numberIn("cal-mm") })));
$("cal-gauge").onclick = () => act(async () => calOut(await call("calibration.read_gauge")));
$("cal-end").onclick = () => act(async () => calOut(await call("calibration.end")));

// After every script of the page (link.js, runner.js, report.js) has run: they handle what comes in.
document.addEventListener("DOMContentLoaded", () => connect());
