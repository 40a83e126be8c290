// What the Web PubSub interop tests share: a server with a server key, a JWT secret and
// `[webpubsub]` settings; client URLs from `GET /api/_rt/ws` and from the server SDK's
// `getClientAccessToken`; official clients of each version and subprotocol, with what they
// receive recorded; a TCP proxy whose sockets a test can cut (to make a reliable client
// recover) and whose upgrade requests it can read and rewrite.
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import net from "node:net";
import * as client110 from "@azure/web-pubsub-client";
import * as client104 from "@azure/web-pubsub-client-1.0";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import WebSocket from "ws";
import { startServer, waitFor, sleep, signalR } from "./server.mjs";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export { waitFor, sleep, WebSocket };

const require = createRequire(import.meta.url);

/** The client packages under test, by their installed version (the aliases are checked). */
export const VERSIONS = [
  { version: require("@azure/web-pubsub-client/package.json").version, sdk: client110 },
  { version: require("@azure/web-pubsub-client-1.0/package.json").version, sdk: client104 },
];

/** The two JSON subprotocols, `json.webpubsub.azure.v1` and `json.reliable.webpubsub.azure.v1` (the SDK exports factories, not classes). */
export const PROTOCOLS = [
  { name: "json", reliable: false, make: (sdk) => sdk.WebPubSubJsonProtocol() },
  { name: "reliable", reliable: true, make: (sdk) => sdk.WebPubSubJsonReliableProtocol() },
];

/** Every client version with every subprotocol. */
export const MATRIX = VERSIONS.flatMap((v) => PROTOCOLS.map((p) => ({ ...v, protocol: p, label: `${v.version} ${p.name}` })));

// A server key of the config file: the first server key, so it is also the default
// `[webpubsub] access_key` (the server-key flag that startServer passes comes after it).
export const WPS_KEY = "wps-interop-server-key-0123456789";
export const JWT_SECRET = "wps-interop-jwt-secret-0123456789abcdef";
export const HUB = "app";
export const DEFAULT_TIMEOUT_MS = 10_000;

/** A config file: the server key, the JWT secret and `[webpubsub]` settings (TOML values as JSON). */
export function config(webpubsub = {}, extra = "") {
  const lines = [extra, "[auth]", `jwt_secret = ${JSON.stringify(JWT_SECRET)}`, "",
    "[[api_keys]]", `key = ${JSON.stringify(WPS_KEY)}`, 'role = "server"', "", "[webpubsub]"];
  for (const [name, value] of Object.entries(webpubsub)) lines.push(`${name} = ${JSON.stringify(value)}`);
  return `${lines.join("\n")}\n`;
}

/**
 * rthub with `config(webpubsub)`; adds `connectionString` and `service` (a
 * WebPubSubServiceClient for the hub) to what startServer returns.
 */
export async function startWpsServer({ webpubsub = {}, extra = "", args = [] } = {}) {
  const server = await startServer(args, { config: config(webpubsub, extra) });
  server.connectionString = `Endpoint=${server.origin};AccessKey=${webpubsub.access_key ?? WPS_KEY};Version=1.0;`;
  // The endpoint is plain http on loopback: the SDK refuses that unless told.
  server.service = new WebPubSubServiceClient(server.connectionString, webpubsub.hub ?? HUB, { allowInsecureConnection: true });
  return server;
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An HS256 rthub user token for `sub` with `roles`. */
export function jwt(sub, roles = []) {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, roles, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
}

/** Request headers for an identity: `{ user }` (a JWT), `{ apikey }`, or `{}` (the server key). */
export function credentials({ user, apikey } = {}) {
  if (user !== undefined) return { authorization: `Bearer ${jwt(user)}` };
  return { "x-apikey": apikey ?? WPS_KEY };
}

/**
 * `GET /api/_rt/ws` as `who` (see credentials); `groups` become repeated `group=` query
 * parameters. `json: true` asks for `{ url, baseUrl, token }`, else the text URL is returned.
 * `origin` sends the request elsewhere (a proxy), so the URL names that host.
 */
export async function accessUrl(server, { who = {}, groups = [], json = false, origin = server.origin } = {}) {
  const query = groups.map((g) => `group=${encodeURIComponent(g)}`).join("&");
  const response = await fetch(`${origin}/api/_rt/ws${query ? `?${query}` : ""}`, {
    headers: { ...credentials(who), ...(json ? { accept: "application/json" } : {}) },
  });
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`GET /api/_rt/ws${json ? " (Accept: application/json)" : ""} answered ${response.status}: ${text.slice(0, 500)}`);
  }
  if (!json) return text.trim();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`GET /api/_rt/ws with Accept: application/json answered ${response.headers.get("content-type")}: ${text.slice(0, 500)}`);
  }
}

/** A URL from the server SDK: `getClientAccessToken({ userId, roles, groups })`. */
export async function sdkUrl(server, options = {}) {
  const { url } = await server.service.getClientAccessToken(options);
  return url;
}

/** Puts the client URL on `origin` (a proxy) instead of the server, keeping path and query. */
export function viaOrigin(url, origin) {
  const target = new URL(url);
  const through = new URL(origin);
  target.host = through.host;
  return target.toString();
}

const open = new Set();

// The clients ping every 20 s and check every 40 s for 120 s of silence, on timers that a
// stop() does not cancel (the process would linger 40 s after the tests). Faster: a ping a
// second, silence of 15 s closes the socket, checked every 5 s — so a server that does not
// answer ping with pong shows as dropped connections here too.
export const KEEPALIVE = { keepAliveIntervalInMs: 1000, keepAliveTimeoutInMs: 15_000 };

/**
 * A new, not started client of `entry` (a MATRIX row) for `url` (a string or a
 * `getClientAccessUrl` callback). It records into `c.connected`, `c.disconnected`,
 * `c.messages` (group messages), `c.serverMessages`, `c.stopped`, `c.rejoinFailed`.
 * `options` go to the client (e.g. `messageRetryOptions: { maxRetries: 0 }` so a refusal is
 * answered once instead of retried three times a second apart).
 */
export function makeClient(entry, url, options = {}) {
  const client = new entry.sdk.WebPubSubClient(
    typeof url === "string" ? url : { getClientAccessUrl: url },
    { protocol: entry.protocol.make(entry.sdk), ...KEEPALIVE, ...options },
  );
  const c = { client, entry, connected: [], disconnected: [], messages: [], serverMessages: [], stopped: 0, rejoinFailed: [] };
  client.on("connected", (e) => { c.connected.push(e); });
  client.on("disconnected", (e) => { c.disconnected.push(e); });
  client.on("group-message", (e) => { c.messages.push(e.message); });
  client.on("server-message", (e) => { c.serverMessages.push(e.message); });
  client.on("stopped", () => { c.stopped += 1; });
  client.on("rejoin-group-failed", (e) => { c.rejoinFailed.push(e); });
  open.add(c);
  return c;
}

/**
 * A started client whose `connected` event has come: `c.connectionId` and `c.userId` are
 * from it. `start()` resolves when the socket opens, before the server's `connected`.
 */
export async function startClient(entry, url, options = {}) {
  const c = makeClient(entry, url, options);
  await withTimeout(c.client.start(), `${entry.label}: start()`);
  await waitFor(() => c.connected.length > 0, `${entry.label}: the connected event (system/connected from the server)`, DEFAULT_TIMEOUT_MS);
  c.connectionId = c.connected[0].connectionId;
  c.userId = c.connected[0].userId;
  return c;
}

/** Stops every client made here (after each test file); stop() is synchronous. */
export async function stopClients() {
  const all = [...open];
  open.clear();
  for (const c of all) c.client.stop();
}

/** Rejects with `what` if `promise` has not settled in `ms`. */
export async function withTimeout(promise, what, ms = DEFAULT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Expects `promise` (a join/leave/send) to reject with the server's ack error `name`
 * (SendMessageError with errorDetail.name); says what came instead otherwise.
 */
export async function expectAckError(promise, name, what) {
  let outcome;
  try {
    outcome = { resolved: await withTimeout(promise, `the ack of ${what}`) };
  } catch (error) {
    outcome = { error };
  }
  if (outcome.resolved !== undefined) {
    throw new Error(`${what}: expected a ${name} ack, but it succeeded: ${JSON.stringify(outcome.resolved)}`);
  }
  const { error } = outcome;
  const detail = error?.errorDetail;
  if (error?.name !== "SendMessageError" || detail?.name !== name) {
    throw new Error(`${what}: expected SendMessageError with errorDetail.name ${name}, got ` +
      `${error?.name}: ${error?.message} errorDetail=${JSON.stringify(detail)}`);
  }
  return error;
}

/** Waits until `c.messages` has one that `match` accepts; resolves to it. */
export async function waitForMessage(c, match, what, ms = DEFAULT_TIMEOUT_MS) {
  await waitFor(() => c.messages.some(match), `${c.entry.label}: ${what}`, ms,
    () => `got ${c.messages.length} group messages, last: ${JSON.stringify(c.messages.slice(-3)).slice(0, 600)}`);
  return c.messages.find(match);
}

/** A unique group name on the `app` prefix. */
let groupCounter = 0;
export const group = (name) => `app:${name}-${process.pid}-${++groupCounter}`;

/** A started @microsoft/signalr connection (`protocol`: json | messagepack) as `user` (or anonymous). */
export async function signalrClient(server, { protocol = "json", user } = {}) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl, {
      transport: signalR.HttpTransportType.WebSockets,
      ...(user === undefined ? {} : { accessTokenFactory: () => jwt(user) }),
    })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  const connection = builder.build();
  await withTimeout(connection.start(), `SignalR ${protocol}: start()`);
  return connection;
}

/**
 * A TCP proxy on a free loopback port in front of `targetPort`. `cut()` destroys every open
 * pair of sockets at once (the client sees its WebSocket drop, the server its TCP peer go);
 * `refuse(true)` resets new connections until `refuse(false)`. `requests` holds the request
 * line of every connection's first request (`GET /path?query HTTP/1.1`); `rewrite(fn)` maps
 * the head of every later request before it goes on (e.g. to spoil a reconnection token).
 */
export async function startProxy(targetPort) {
  const pairs = new Set();
  const requests = [];
  let refusing = false;
  let rewriteHead = null;
  const listener = net.createServer((downstream) => {
    if (refusing) { downstream.destroy(); return; }
    const upstream = net.connect(targetPort, "127.0.0.1");
    const pair = { downstream, upstream };
    pairs.add(pair);
    const drop = () => { pairs.delete(pair); downstream.destroy(); upstream.destroy(); };
    downstream.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    // Buffer the request head (up to the blank line) so it can be read and rewritten whole.
    let head = Buffer.alloc(0);
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0 && head.length < 65536) return;
      downstream.off("data", onHead);
      let text = head.toString("latin1");
      requests.push(text.split("\r\n")[0]);
      if (rewriteHead) text = rewriteHead(text);
      upstream.write(Buffer.from(text, "latin1"));
      downstream.pipe(upstream);
    };
    downstream.on("data", onHead);
    upstream.pipe(downstream);
  });
  await new Promise((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const port = listener.address().port;
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    requests,
    get open() { return pairs.size; },
    cut() {
      const n = pairs.size;
      for (const { downstream, upstream } of [...pairs]) { downstream.destroy(); upstream.destroy(); }
      pairs.clear();
      return n;
    },
    refuse(on) { refusing = on; },
    rewrite(fn) { rewriteHead = fn; },
    async close() {
      this.cut();
      await new Promise((resolve) => listener.close(resolve));
    },
  };
}
