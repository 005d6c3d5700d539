// smpdevice web console: the session runner (profile, screening, run, progress, result).
"use strict";

// ---------------------------------------------------------------- number fields
// A number field's value, or a refusal naming the field. The fields are text (a browser's
// number field drops what it cannot read as it is typed: "4,5" became 45, "0x10" 10), so only
// a plain decimal is a number: sign, digits, a point and digits, an exponent. A decimal comma,
// a blank, 1e400 (no finite number) are refused; +"" is 0, which must never be sent.
const DECIMAL = /^[+-]?(\d+(\.\d+)?|\.\d+)([eE][+-]?\d+)?$/;
function numberIn(id) {
  const el = $(id), v = el.value.trim(), n = Number(v);
  if (!DECIMAL.test(v) || !Number.isFinite(n)) {
    const label = (el.closest("label") || el).textContent.trim() || id;
    const comma = /^[+-]?\d*,\d+$/.test(v) ? ` ("${v}": write a decimal point, ${v.replace(",", ".")})` : "";
    throw new Error(`${label}: not a number${comma}; type one (nothing was sent)`);
  }
  return n;
}

// ---------------------------------------------------------------- text fields
// The service's limits, in characters as it counts them (code points): a technician's name
// 200, a clear's reason 500. An insertion that would pass one is refused whole with a message:
// never cut silently, never sent. A paste the page sees first (beforeinput) is refused before
// the browser lays it out; one it does not (execCommand) the browser bounds at maxLength
// first, as inserting 16 MiB kept the page's one thread (a driving page's heartbeats) busy for
// seconds. maxLength counts UTF-16 units, 1 or 2 a character, and never splits one: 2 * limit
// + 2 units hold every text the service takes, and a text it cut is over the limit, refused.
const TEXT_LIMITS = { technician: ["Technician", 200], "cal-tech": ["Technician", 200],
  "clear-reason": ["The reason to clear", 500] };
// Code points, without spreading a huge text: UTF-16 units are 1 or 2 per code point.
function chars(text, limit) { return text.length > 2 * limit ? text.length : [...text].length; }
for (const [id, [name, limit]] of Object.entries(TEXT_LIMITS)) {
  const el = $(id);
  el.maxLength = 2 * limit + 2;
  let kept = el.value;
  const refuse = (n) => show(`${name}: ${n > 2 * limit ? "a text" : `${n} characters`} `
    + `over the service's limit of ${limit} characters; not kept`);
  el.addEventListener("beforeinput", (ev) => {
    const added = ev.data ?? (ev.dataTransfer ? ev.dataTransfer.getData("text/plain") : "");
    if (!added) return;
    const rest = el.value.slice(0, el.selectionStart ?? 0) + el.value.slice(el.selectionEnd ?? 0);
    const n = chars(rest, limit) + chars(added, limit);
    if (n > limit) { ev.preventDefault(); refuse(n); }
  });
  el.addEventListener("input", () => {  // what beforeinput did not stop (execCommand, IME)
    const n = chars(el.value, limit);
    if (n <= limit) { kept = el.value; return; }
    el.value = kept; refuse(n);
  });
  // a value the page set itself (the reason cleared after a clear) is the one kept
  el.addEventListener("focus", () => { kept = el.value; });
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
  setProfile(await f.text(), f.name);
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
let profileKept = "", profileName = "";  // the file the text came from (its format)
function setProfile(text, name) {
  $("profile-text").value = text; profileKept = text; profileName = name;
}
$("profile-text").addEventListener("beforeinput", (ev) => {
  const added = ev.data ?? (ev.dataTransfer ? ev.dataTransfer.getData("text/plain") : "");
  const bytes = added ? utf8Bytes(added) : 0;
  if (bytes > MAX_MESSAGE_BYTES) { ev.preventDefault(); refuseProfileText(bytes); return; }
  const t = ev.target;  // the whole text replaced by one pasted or dropped: no file's any more
  if (added && t.selectionStart === 0 && t.selectionEnd === t.value.length) profileName = "";
});
$("profile-text").addEventListener("input", (ev) => {
  const bytes = utf8Bytes(ev.target.value);
  if (!ev.target.value.trim()) profileName = "";  // emptied: what comes next is another text
  if (bytes <= MAX_MESSAGE_BYTES) { profileKept = ev.target.value; return; }
  ev.target.value = profileKept; refuseProfileText(bytes);
});
$("demo-profile-btn").onclick = async () => {
  setProfile(await (await fetch("demo-profile.yaml")).text(), "demo-profile.yaml");
};
// The format: a file's by its name, as `smp profile check` reads it (.json as JSON, any other
// as YAML: YAML's flow style, {client_ref: C-1, ...}, starts with "{" too); pasted text as
// JSON if it is JSON, else as YAML.
function profileFormat(text) {
  if (profileName) return /\.json$/i.test(profileName) ? "json" : "yaml";
  try { JSON.parse(text); return "json"; } catch (e) { return "yaml"; }
}
function profileParams() {
  const text = $("profile-text").value;
  return { profile: text, format: profileFormat(text) };
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
// `cut`: session.run cut by a close before its answer (the page's client id then, and the
// session id held from its notifications, if any): resolved at the next connection.
const runner = { session: null, done: true, starting: false, early: [], cut: null };
function mine(handler, p) {
  if (runner.starting || runner.cut) { runner.early.push([handler, p]); return false; }
  return runner.session !== null && p.session_id === runner.session;
}

// Every session starts with its own screening: none preselected, as at the page's first load.
function resetScreening() {
  for (const r of document.querySelectorAll("#screening input")) r.checked = false;
}
// Pass `index`'s line, and "planned" lines before it when the page did not learn the plan.
function passLi(index) {
  for (let i = $("passes").children.length; i <= index; i++) {
    const li = document.createElement("li"); li.id = `pass-${i}`; li.textContent = "planned";
    $("passes").append(li);
  }
  return $(`pass-${index}`);
}
function claim(sid, planned) {
  runner.session = sid; runner.done = false; document.body.dataset.session = sid;
  if (planned) passLi(planned - 1);
}
// What came while nothing could tell whose it was: this page's session's, or another's end.
function replayHeld() {
  for (const [handler, p] of runner.early.splice(0)) {
    if (p.session_id === runner.session) handler(p);
    else if (handler === onResult) otherResult(p);
  }
}

$("session-start").onclick = () => act(async () => {
  if (!app.driving && !(await takeControl())) return;
  $("passes").replaceChildren(); $("session-result").replaceChildren();
  const params = { ...profileParams(), screening: screeningAnswers(), technician: $("technician").value };
  if ($("quick").checked) params.quick_pass_s = 0.4;
  runner.starting = true; runner.early = [];
  const me = app.me;
  let r;
  try { r = await call("session.run", params); } catch (e) {
    if (e.closed) startCut(me);
    replayHeld(); throw e;
  } finally { runner.starting = false; }
  resetScreening();  // these answers were this session's; the next one asks again
  claim(r.session_id, r.planned_passes);
  replayHeld();  // this session's own only; another's end is its own line
});
$("session-stop").onclick = () => act(() => call("session.stop"));

// The connection closed after session.run went, before its answer: the session may have
// started, and it is this page's. Its id is the one its notifications carried, or the
// service's status naming this page's old connection as the session's client.
const CUT_WORDS = "the connection closed as the session started; see the pass log";
function startCut(me) {
  const held = runner.early.find(([, p]) => p.session_id);
  runner.cut = { me, sid: held ? held[1].session_id : null };
  throw new Error(CUT_WORDS);
}
function resolveCut(st) {
  const cut = runner.cut;
  runner.cut = null;
  const known = st && st.session_id && st.client === cut.me;
  const sid = cut.sid || (known ? st.session_id : null);
  if (sid) claim(sid, st && st.session_id === sid ? st.planned_passes : 0);
  else show(`${CUT_WORDS} (the service does not say it started)`);
  replayHeld();
}

function onProgress(p) {
  if (!mine(onProgress, p)) return;
  const li = passLi(p.index);
  li.className = "running";
  li.textContent = `${p.zone}: ${Math.round(p.fraction * 100)} %  (${p.impressions} impressions)`;
}
// How a pass ended, and what stopped it (the service's detail: Stop, the controller, the pen).
function passWords(p) {
  return `${p.zone}: ${passOutcomeText(p.outcome)}${p.detail ? " — " + p.detail : ""}`;
}
function onPass(p) {
  if (!mine(onPass, p)) return;
  const li = passLi(p.index);
  li.className = passOutcomeClass(p.outcome);
  li.dataset.outcome = p.outcome;
  li.textContent = passWords(p);
}
function onResult(r) {
  if (!runner.starting && !runner.cut && r.session_id !== runner.session) { otherResult(r); return; }
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
  if (runner.cut) resolveCut(state.session);
  if (!runner.session || runner.done) return;
  const sid = runner.session, st = state.session;
  if (st && st.session_id === sid && st.running) return;
  let logged = null;
  try { logged = await call("sessions.show", { session_id: sid }); } catch (e) { logged = null; }
  if (runner.done || runner.session !== sid) return;  // its result came meanwhile
  runner.done = true;
  const passes = new Map(((logged && logged.passes) || []).map((p) => [p.index, p]));
  for (const index of passes.keys()) passLi(index);
  for (const li of document.querySelectorAll("#passes li")) {
    const p = passes.get(Number(li.id.slice("pass-".length)));
    if (p && p.outcome) {
      li.className = passOutcomeClass(p.outcome); li.dataset.outcome = p.outcome;
      li.textContent = passWords(p);
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
