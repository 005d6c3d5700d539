// smpdevice web console: the session runner (profile, screening, run, progress, result).
"use strict";

// ---------------------------------------------------------------- number fields
// A number field's value, or a refusal naming the field: a text it cannot hold as a number
// (1e400, 1,5, blank) reads as "", and +"" is 0, which must never be sent as the value.
function numberIn(id) {
  const el = $(id), v = el.value.trim(), n = Number(v);
  if (el.validity.badInput || v === "" || !Number.isFinite(n)) {
    const label = (el.closest("label") || el).textContent.trim() || id;
    throw new Error(`${label}: not a number; type one (nothing was sent)`);
  }
  return n;
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
  if (!f) return;
  if (f.size > MAX_MESSAGE_BYTES) {  // a photo or a log picked by mistake: never sent
    ev.target.value = "";
    show(`${f.name} is ${kib(f.size)} KiB: a profile must fit the service's cap of `
      + `${kib(MAX_MESSAGE_BYTES)} KiB per request; not loaded`);
    return;
  }
  setProfile(await f.text());
};
// Text pasted or dropped over the cap is refused before the browser inserts it: laying out a
// textarea of megabytes keeps the page's one thread busy for seconds, and a driving page's
// heartbeats with it (the dead-man would stop the needle). Typing past it: taken back at once.
function utf8Bytes(text) {
  return text.length * 3 <= MAX_MESSAGE_BYTES ? text.length : new TextEncoder().encode(text).length;
}
function refuseProfileText(bytes) {
  show(`the profile text would be ${kib(bytes)} KiB, over the service's cap of `
    + `${kib(MAX_MESSAGE_BYTES)} KiB per request; not kept`);
}
let profileKept = "";
function setProfile(text) { $("profile-text").value = text; profileKept = text; }
$("profile-text").addEventListener("beforeinput", (ev) => {
  const added = ev.data ?? (ev.dataTransfer ? ev.dataTransfer.getData("text/plain") : "");
  const bytes = added ? utf8Bytes(added) : 0;
  if (bytes > MAX_MESSAGE_BYTES) { ev.preventDefault(); refuseProfileText(bytes); }
});
$("profile-text").addEventListener("input", (ev) => {
  const bytes = utf8Bytes(ev.target.value);
  if (bytes <= MAX_MESSAGE_BYTES) { profileKept = ev.target.value; return; }
  ev.target.value = profileKept; refuseProfileText(bytes);
});
$("demo-profile-btn").onclick = async () => {
  setProfile(await (await fetch("demo-profile.yaml")).text());
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
// The session this page started and follows until its result: `done` once it is shown.
// Another client's session (`smp run --service` in a terminal) never touches its passes or
// result; its end is one line of its own. `early`: what came while session.run was answered.
const runner = { session: null, done: true, starting: false, early: [] };
function mine(handler, p) {
  if (runner.starting) { runner.early.push([handler, p]); return false; }
  return runner.session !== null && p.session_id === runner.session;
}

// Every session starts with its own screening: none preselected, as at the page's first load.
function resetScreening() {
  for (const r of document.querySelectorAll("#screening input")) r.checked = false;
}

$("session-start").onclick = () => act(async () => {
  if (!app.driving && !(await takeControl())) return;
  $("passes").replaceChildren(); $("session-result").replaceChildren();
  const params = { ...profileParams(), screening: screeningAnswers(), technician: $("technician").value };
  if ($("quick").checked) params.quick_pass_s = 0.4;
  runner.starting = true; runner.early = [];
  let r;
  try { r = await call("session.run", params); } finally { runner.starting = false; }
  resetScreening();  // these answers were this session's; the next one asks again
  runner.session = r.session_id; runner.done = false;
  const planned = r.planned_passes;
  for (let i = 0; i < planned; i++) {
    const li = document.createElement("li"); li.id = `pass-${i}`; li.textContent = "planned";
    $("passes").append(li);
  }
  document.body.dataset.session = r.session_id;
  for (const [handler, p] of runner.early.splice(0)) handler(p);  // this session's own only
});
$("session-stop").onclick = () => act(() => call("session.stop"));

function onProgress(p) {
  if (!mine(onProgress, p)) return;
  const li = $(`pass-${p.index}`); if (!li) return;
  li.className = "running";
  li.textContent = `${p.zone}: ${Math.round(p.fraction * 100)} %  (${p.impressions} impressions)`;
}
function onPass(p) {
  if (!mine(onPass, p)) return;
  const li = $(`pass-${p.index}`); if (!li) return;
  li.className = passOutcomeClass(p.outcome);
  li.dataset.outcome = p.outcome;
  li.textContent = `${p.zone}: ${passOutcomeText(p.outcome)}${p.detail ? " — " + p.detail : ""}`;
}
function onResult(r) {
  if (!runner.starting && r.session_id !== runner.session) { otherResult(r); return; }
  if (!mine(onResult, r)) return;
  if (!runner.done) resetScreening();
  runner.done = true;
  // Why it ended, when the outcome cannot say (a calibration that expired between passes:
  // `cause`), and whether it can be resumed (`left_open`).
  const why = [r.error, r.cause, r.left_open ? "left open: it can be resumed" : ""]
    .filter(Boolean).join(" — ");
  showResult(r.complete, r.complete ? `Session ${r.session_id} complete`
    : `INCOMPLETE session ${r.session_id}: ${r.outcome}${why ? " — " + why : ""}`,
  r.aftercare, r.outcome);
}
function otherResult(r) {
  const line = $("other-session");
  line.textContent = `Another client's session ${r.session_id} ended: `
    + `${r.complete ? "complete" : `INCOMPLETE (${r.outcome})`}; see the pass log`;
  line.hidden = false;
}
function showResult(complete, text, aftercare, outcome) {
  const box = $("session-result"); box.replaceChildren();
  const h = document.createElement("p");
  h.className = complete ? "outcome-complete" : "outcome-incomplete";
  h.id = "session-outcome";
  h.textContent = text;
  const pre = document.createElement("pre"); pre.textContent = aftercare || "";
  box.append(h, pre);
  document.body.dataset.sessionOutcome = outcome;
}

// On every (re)connection: a session this page follows may have ended while the page was away
// (its result went to the closed connection; `smp serve` restarted): never leave a pass shown
// playing. Still running: its notifications come again. Else the service's status or the pass
// log says how it ended.
async function reconcileRunner(state) {
  if (!runner.session || runner.done) return;
  const sid = runner.session, st = state.session;
  if (st && st.session_id === sid && st.running) return;
  let logged = null;
  try { logged = await call("sessions.show", { session_id: sid }); } catch (e) { logged = null; }
  if (runner.done || runner.session !== sid) return;  // its result came meanwhile
  runner.done = true;
  const passes = new Map(((logged && logged.passes) || []).map((p) => [p.index, p]));
  for (const li of document.querySelectorAll("#passes li")) {
    const p = passes.get(Number(li.id.slice("pass-".length)));
    if (p && p.outcome) {
      li.className = passOutcomeClass(p.outcome); li.dataset.outcome = p.outcome;
      li.textContent = `${p.zone}: ${passOutcomeText(p.outcome)}`;
    } else if (p || li.className === "running") {
      li.className = "failed"; li.dataset.outcome = "unknown";
      li.textContent = `${p ? p.zone : "pass"}: ended while this page was away; not recorded as finished`;
    } else if (!li.dataset.outcome) {
      li.className = ""; li.textContent = "not played";
    }
  }
  const summary = logged && logged.session.summary;
  const known = st && st.session_id === sid;  // the same service: its status has the outcome
  const outcome = known ? st.outcome : summary ? summary.outcome : "open";
  const complete = known ? Boolean(st.complete) : Boolean(logged && logged.session.complete);
  const why = known ? (st.left_open ? " — left open: it can be resumed" : "")
    : summary ? "" : " — the service stopped while it ran; the session is left open in the pass log";
  showResult(complete, complete ? `Session ${sid} complete`
    : `INCOMPLETE session ${sid}: ${outcome}${why}`, logged && logged.aftercare, outcome);
  resetScreening();
  refreshLog();
}
