// smpdevice web console: the link to the service (token, WebSocket, JSON-RPC calls).
"use strict";

// The token is everything after `token=` in the fragment, URL-encoded: a service token may be
// any printable ASCII (& # % + ...; console_url encodes it). A bare `%` is taken as written.
function tokenInHash() {
  const m = location.hash.match(/^#(?:.*?&)?token=(.*)$/s);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
}
// the token leaves the address bar; the query (`?log_page=N`, report.js) stays
function stripToken() { history.replaceState(null, "", location.pathname + location.search); }
function token() {
  const t = tokenInHash();
  if (t !== null) { sessionStorage.setItem("smp-token", t); stripToken(); }
  return sessionStorage.getItem("smp-token");
}

// This page holds the pen or plays a session of its own: no link ever lets go of it.
function busyWithPen() {
  return app.driving || app.tookPen || runner.starting || (runner.session !== null && !runner.done);
}
const LINK_WHILE_DRIVING = "a console link was opened while this page drives the pen: release "
  + "the pen (or let the session end), then open the link again";

// Another console link opened in this tab changes only the fragment (no new page). Its token
// leaves the address bar at once. The same token again changes nothing; a page that drives
// the pen keeps it and its connection; else the token is tried on a connection of its own,
// or, while the page has no connection (the service restarting), on its next one: the link
// waits in `app.linkToken` and the page's own token stays until the service accepts it.
window.addEventListener("hashchange", () => {
  const t = tokenInHash();
  if (t === null) return;
  stripToken();
  if (t === sessionStorage.getItem("smp-token")) { app.linkToken = null; return; }
  if (busyWithPen()) { show(LINK_WHILE_DRIVING); return; }
  if (!linkUp()) { waitForService(t); return; }
  tryToken(t);
});
function linkUp() { return app.ws !== null && app.ws.readyState === WebSocket.OPEN; }
const LINK_WAITS = "the service cannot be reached now: this page connects under the link's "
  + "token once it is back (a token it refuses leaves the page's own)";
function waitForService(t) {
  app.linkToken = t; show(LINK_WAITS);
  if (!app.ws) connect();  // else the page's reconnect (every second) takes it
}

function openSocket() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/rpc`);
  ws.pending = new Map();  // this connection's calls: a close cuts these, never another's
  ws.onmessage = (ev) => onMessage(ws, JSON.parse(ev.data));
  return ws;
}
const helloParams = (t) => ({ token: t || "", client: "web console" });

function connect() {
  clearTimeout(app.retry);
  const ws = openSocket();
  app.ws = ws;
  ws.onopen = async () => {
    app.role = null;
    try {
      const hello = await linkHello(ws) || await callOn(ws, "rpc.hello", helloParams(token()));
      if (ws === app.ws) await setUp(hello);
    } catch (e) {
      if (e.givenUp || ws !== app.ws) return;  // swapped for another token's connection
      if (!app.role) { $("role").textContent = ""; delete document.body.dataset.role; }
      show(`cannot connect: ${e.message}`);
    }
  };
  ws.onclose = () => linkClosed(ws);
}

// A link opened while the page had no connection: its token first. Accepted, it is the page's;
// refused, the page says so and says hello under its own (null); a connection closed
// meanwhile keeps the link for the next one.
async function linkHello(ws) {
  const t = app.linkToken;
  if (t === null || t === undefined) return null;
  try {
    const hello = await callOn(ws, "rpc.hello", helloParams(t));
    if (app.linkToken === t) app.linkToken = null;
    sessionStorage.setItem("smp-token", t);
    if ($("message").textContent === LINK_WAITS) hide();
    return hello;
  } catch (e) {
    if (e.closed || e.givenUp || ws !== app.ws) throw e;
    if (app.linkToken === t) app.linkToken = null;
    show(`cannot connect under the link's token: ${e.message}; this page connects under its own`);
    return null;
  }
}

// Once rpc.hello is answered on the page's connection (app.ws).
async function setUp(hello) {
  app.role = hello.role; app.me = hello.client_id;
  $("conn").textContent = "connected"; $("role").textContent = `role: ${hello.role}`;
  document.body.dataset.role = hello.role;
  await loadIdentity();
  $("serial").textContent = app.identity.identity ? app.identity.identity.serial : "";
  fillZones(app.identity.zones);
  await call("telemetry.subscribe", { rate_hz: 25 });
  const state = await call("pen.state");
  applyState(state);
  refreshLog();
  await reconcileRunner(state);  // a session followed before a lost connection
}

function linkClosed(ws) {
  const cut = Object.assign(new Error("connection closed"),
    { givenUp: Boolean(ws.givenUp), closed: true });
  for (const [, p] of ws.pending) p.reject(cut);
  ws.pending.clear();
  if (ws !== app.ws) return;  // a connection swapped out, or a token's trial: not the page's
  $("conn").textContent = "disconnected: retrying"; setState("disconnected");
  stopHeartbeat(); app.tookPen = false;  // a closed link drives nothing
  app.retry = setTimeout(connect, 1000);
}

// A link's other token: its hello on a new connection while the page's own connection stays
// (an E-stop goes through it until the swap). Only an answered hello swaps them; a refused
// token, or a page that took the pen meanwhile, keeps the old connection and token.
function tryToken(t) {
  if (app.trial) { app.trial.givenUp = true; app.trial.close(); }
  const ws = openSocket();
  app.trial = ws;
  const drop = (why) => {
    if (app.trial !== ws) return;
    app.trial = null; ws.givenUp = true; ws.close();
    if (why) show(why);
  };
  const keeps = () => `this page keeps its connection${app.role ? ` (role: ${app.role})` : ""}`;
  ws.onclose = () => {
    linkClosed(ws);
    if (app.trial !== ws) return;
    drop(null);
    // The service closed only this one, or went down (a restart): the page's own connection
    // says which; down, the link waits for the service's return.
    const newer = () => app.trial !== null || (app.linkToken ?? null) !== null;
    call("rpc.ping").then(() => {
      if (!newer()) show(`cannot connect under the link's token: the service closed the `
        + `connection; ${keeps()}`);
    }, (e) => {
      if (newer()) return;
      if (e.closed || !linkUp()) waitForService(t);
      else show(`cannot connect under the link's token: the service closed the connection`);
    });
  };
  ws.onopen = async () => {
    let hello;
    try { hello = await callOn(ws, "rpc.hello", helloParams(t)); } catch (e) {
      drop(`cannot connect under the link's token: ${e.message}; ${keeps()}`); return;
    }
    if (app.trial !== ws) return;
    if (busyWithPen()) { drop(LINK_WHILE_DRIVING); return; }
    app.trial = null;
    sessionStorage.setItem("smp-token", t);
    const old = app.ws;
    app.ws = ws; clearTimeout(app.retry);
    if (old) { old.givenUp = true; old.close(); }
    ws.onclose = () => linkClosed(ws);
    try { await setUp(hello); } catch (e) { showError(e); }
  };
}

function call(method, params = {}) { return callOn(app.ws, method, params); }
function callOn(ws, method, params) {
  return new Promise((resolve, reject) => {
    if (!ws || ws.readyState !== WebSocket.OPEN) { reject(new Error("not connected")); return; }
    const id = app.ids++;
    const text = JSON.stringify({ jsonrpc: "2.0", id, method, params });
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > MAX_MESSAGE_BYTES) {
      reject(new Error(`${method}: the request is ${kib(bytes)} KiB, over the service's cap of `
        + `${kib(MAX_MESSAGE_BYTES)} KiB per request; nothing was sent`));
      return;
    }
    ws.pending.set(id, { resolve, reject });
    ws.send(text);
  });
}

function onMessage(ws, m) {
  if (m.method) { if (ws === app.ws) onNotification(m.method, m.params); return; }
  const p = ws.pending.get(m.id);
  if (!p) return;
  ws.pending.delete(m.id);
  if (m.error) p.reject(Object.assign(new Error(m.error.message),
    { code: m.error.code, data: m.error.data }));
  else p.resolve(m.result);
}
