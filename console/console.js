// The rthub console: signs in as the server, then reads everything through rthub's public
// APIs — REST for lists and forms, /metrics for rates, SignalR (StreamChanges) for the change
// log — so it doubles as an example of them. No build step: plain modules.
import { RateChart, formatRate } from "/_console/chart.js";
import { Pager, renderConnections, renderChannels, renderMembers, CollectionBrowser, appendChange, errorText } from "/_console/views.js";

const STORAGE_KEY = "rthub.console.credential";
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

/** The credential for this tab: `{kind: "apikey" | "bearer", value}`. */
let credential = null;
let timer = null;
let hub = null;

export function authHeaders() {
  if (!credential) return {};
  return credential.kind === "apikey"
    ? { "x-apikey": credential.value }
    : { authorization: `Bearer ${credential.value}` };
}

/** fetch with the credential; resolves to the parsed body or throws an Error with the server's message. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const response = await fetch(path, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  if (!response.ok) {
    const error = new Error(errorText(parsed) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return parsed;
}

function setStatus(text) { $("status").textContent = text; }

// ---- sign-in ---------------------------------------------------------------------------------

function showAuthorityFields() {
  const chosen = document.querySelector("input[name=authority]:checked").value;
  for (const block of document.querySelectorAll("[data-for]")) block.hidden = block.dataset.for !== chosen;
}

async function signIn(event) {
  event.preventDefault();
  const error = $("login-error");
  error.textContent = "";
  const authority = document.querySelector("input[name=authority]:checked").value;
  try {
    let candidate;
    if (authority === "apikey") {
      const key = $("apikey").value.trim();
      if (!key) throw new Error("Enter the server API key.");
      candidate = { kind: "apikey", value: key };
    } else {
      const { token } = await api("/api/_auth", {
        method: "POST",
        body: { authority: "serviceaccount", clientId: $("client-id").value, clientSecret: $("client-secret").value },
      });
      candidate = { kind: "bearer", value: token };
    }
    await start(candidate);
  } catch (e) {
    credential = null;
    sessionStorage.removeItem(STORAGE_KEY);
    error.textContent = `Sign-in failed: ${e.message}`;
    $(authority === "apikey" ? "apikey" : "client-id").focus();
  }
}

/** Checks the credential against a server-only endpoint before showing anything. */
async function start(candidate) {
  credential = candidate;
  try {
    await api("/api/_rt/connections?pageSize=1");
  } catch (e) {
    credential = null;
    if (e.status === 403) throw new Error("these credentials are not the server's (a client's key or token).", { cause: e });
    throw e;
  }
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(candidate));
  $("login").hidden = true;
  $("console").hidden = false;
  $("logout").hidden = false;
  setStatus("Signed in as the server");
  await loadConsole();
}

function signOut() {
  clearInterval(timer);
  timer = null;
  hub?.stop();
  hub = null;
  credential = null;
  sessionStorage.removeItem(STORAGE_KEY);
  location.reload();
}

// ---- the live parts ------------------------------------------------------------------------

const chart = new RateChart($("chart"));
const connectionsPager = new Pager(document.querySelector("[data-pager=connections]"), () => pollConnections());
let browser;
let previous = null;

async function loadConsole() {
  const schema = await api("/api/_rt/schema");
  browser = new CollectionBrowser(schema.collections, api);
  await Promise.all([poll(), browser.load()]);
  timer = setInterval(poll, POLL_MS);
  await connectHub(schema.collections);
}

async function poll() {
  await Promise.allSettled([pollConnections(), pollChannels(), pollMetrics()]);
}

async function pollConnections() {
  const page = await api(`/api/_rt/connections?pageNo=${connectionsPager.pageNo}&pageSize=${connectionsPager.pageSize}`);
  $("stat-connections").textContent = page.count;
  $("connections-count").textContent = `(${page.count} on this node)`;
  connectionsPager.update(page.count);
  renderConnections($("connections").tBodies[0], page.connections);
}

// Each channel's message count at the previous poll, for its rate.
let lastChannels = { at: 0, messages: new Map() };

async function pollChannels() {
  const page = await api("/api/_rt/channels?pageSize=100");
  const at = performance.now();
  const rates = new Map();
  const seconds = (at - lastChannels.at) / 1000;
  for (const c of page.channels) {
    const before = lastChannels.messages.get(c.group);
    if (before !== undefined && seconds > 0 && c.messages >= before) {
      rates.set(c.group, (c.messages - before) / seconds);
    }
  }
  lastChannels = { at, messages: new Map(page.channels.map((c) => [c.group, c.messages])) };
  $("stat-channels").textContent = page.count;
  $("channels-count").textContent = `(${page.count})`;
  renderChannels($("channels").tBodies[0], page.channels, showMembers, rates);
}

async function showMembers(channel) {
  const target = $("members");
  try {
    const page = await api(`/api/_rt/channels/${encodeURIComponent(channel)}/members?pageSize=100`);
    renderMembers(target, channel, page);
  } catch (e) {
    target.textContent = `Members of ${channel}: ${e.message}`;
  }
}

/** Sums of rthub_messages_{sent,received}_total, in all and by protocol, from Prometheus text. */
export function parseMetrics(text) {
  const totals = { sent: 0, received: 0, byProtocol: {} };
  for (const line of text.split("\n")) {
    const found = /^rthub_messages_(sent|received)_total(?:\{([^}]*)\})?\s+([0-9.eE+-]+)/.exec(line);
    if (!found) continue;
    const [, which, labels = "", value] = found;
    const protocol = /protocol="([^"]*)"/.exec(labels)?.[1] ?? "all";
    const n = Number(value);
    totals[which] += n;
    totals.byProtocol[protocol] ??= { sent: 0, received: 0 };
    totals.byProtocol[protocol][which] += n;
  }
  return totals;
}

async function pollMetrics() {
  const response = await fetch("/metrics", { headers: authHeaders() });
  if (!response.ok) throw new Error(`/metrics: ${response.status}`);
  const now = { at: performance.now(), ...parseMetrics(await response.text()) };
  $("stat-sent").textContent = now.sent;
  $("stat-received").textContent = now.received;
  if (previous) {
    const seconds = Math.max(0.001, (now.at - previous.at) / 1000);
    const rate = (a, b) => Math.max(0, (a - b) / seconds);
    const sent = rate(now.sent, previous.sent);
    const received = rate(now.received, previous.received);
    $("stat-sent-rate").textContent = formatRate(sent);
    $("stat-received-rate").textContent = formatRate(received);
    chart.push(sent, received);
    const rows = Object.entries(now.byProtocol).sort(([a], [b]) => a.localeCompare(b)).map(([protocol, t]) => {
      const before = previous.byProtocol[protocol] ?? { sent: t.sent, received: t.received };
      return [protocol, formatRate(rate(t.sent, before.sent)), formatRate(rate(t.received, before.received))];
    });
    const body = $("protocol-rates").tBodies[0];
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
      return tr;
    }));
  }
  previous = now;
}

/** The console's own SignalR connection: one StreamChanges per collection feeds the change log. */
async function connectHub(collections) {
  // Browsers cannot set headers on a WebSocket: the key goes in the query, a token through
  // accessTokenFactory (the client sends it as Bearer, and as access_token on the socket).
  const url = credential.kind === "apikey"
    ? `/api/_rt/signalr?apikey=${encodeURIComponent(credential.value)}`
    : "/api/_rt/signalr";
  const options = credential.kind === "bearer" ? { accessTokenFactory: () => credential.value } : {};
  hub = new signalR.HubConnectionBuilder()
    .withUrl(url, options)
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  const lastSeq = {};
  const follow = (name) => {
    hub.stream("StreamChanges", name, null, lastSeq[name] ?? null).subscribe({
      next: (change) => {
        lastSeq[name] = change.seq;
        appendChange($("changes"), change);
        browser.changed(change);
      },
      // A stream that fell behind ends with an error: pick it up again after the last seen.
      error: (e) => {
        appendChange($("changes"), { collection: name, operation: "error", data: { message: e.message } });
        setTimeout(() => { if (hub?.state === "Connected") follow(name); }, 2000);
      },
    });
  };
  hub.onreconnecting(() => setStatus("Reconnecting…"));
  hub.onreconnected(() => { setStatus("Signed in as the server"); collections.forEach((c) => follow(c.name)); });
  await hub.start();
  $("console").dataset.hub = "connected";
  collections.forEach((c) => follow(c.name));
}

// ---- forms ---------------------------------------------------------------------------------

function jsonField(id) {
  try { return JSON.parse($(id).value); } catch (e) { throw new Error(`${$(id).labels[0].textContent}: ${e.message}`, { cause: e }); }
}

function formResult(form, promise, ok) {
  const out = form.querySelector(".result");
  out.classList.remove("failed");
  out.textContent = "…";
  promise.then((r) => { out.textContent = ok(r); }, (e) => { out.classList.add("failed"); out.textContent = e.message; });
}

$("send-form").addEventListener("submit", (e) => {
  e.preventDefault();
  formResult(e.target, (async () => api("/api/_rt/send", { method: "POST", body: { channel: $("send-channel").value.trim(), body: jsonField("send-body") } }))(),
    (r) => `Sent: delivered to ${r.delivered} connection(s) on this node.`);
});

$("publish-form").addEventListener("submit", (e) => {
  e.preventDefault();
  formResult(e.target, (async () => api("/realtime", { method: "POST", body: { event: $("publish-event").value.trim(), data: jsonField("publish-data") } }))(),
    () => "Published.");
});

for (const radio of document.querySelectorAll("input[name=authority]")) radio.addEventListener("change", showAuthorityFields);
$("login-form").addEventListener("submit", signIn);
$("logout").addEventListener("click", signOut);

// A reload in the same tab keeps the session (sessionStorage); a stale credential signs out.
const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) {
  start(JSON.parse(saved)).catch((e) => {
    sessionStorage.removeItem(STORAGE_KEY);
    $("login-error").textContent = `Sign-in failed: ${e.message}`;
  });
}
