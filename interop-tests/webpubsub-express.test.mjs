// Web PubSub upstream events end to end: the official @azure/web-pubsub-client talks to rthub,
// and rthub sends its connect, connected, disconnected and user events to an Express app with
// @azure/web-pubsub-express (helpers/webpubsub-handler.mjs), as Azure Web PubSub would.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  WebPubSubClient,
  WebPubSubJsonProtocol,
  WebPubSubJsonReliableProtocol,
} from "@azure/web-pubsub-client";
import { startServer, SERVER_KEY, waitFor, post } from "./helpers/server.mjs";

const ACCESS_KEY = "wps-upstream-interop-access-key-0123456789";
// The clients' keep-alive timers outlive stop(); short ones let the test process end soon.
const KEEPALIVE = { keepAliveIntervalInMs: 1000, keepAliveTimeoutInMs: 15_000 };

let handler;
let server;
const clients = [];

/** The Express app as a child process: resolves with its origin once it listens. */
function startHandler() {
  const child = spawn(process.execPath, ["interop-tests/helpers/webpubsub-handler.mjs"], {
    env: { ...process.env, PORT: "0", HUB: "app", ACCESS_KEY },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error(`the handler app did not start: ${stdout}`)), 30_000);
    child.stdout.on("data", (d) => {
      stdout += d;
      const found = /listening on (http:\/\/\S+)/.exec(stdout);
      if (found) {
        clearTimeout(timer);
        resolve({
          origin: found[1],
          async received() {
            return (await fetch(`${found[1]}/received`)).json();
          },
          stop() {
            child.kill();
          },
        });
      }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the handler app exited (${code}): ${stdout}`)); });
  });
}

/** A client URL from `GET /api/_rt/ws`, with `extra` query parameters for the connect handler. */
async function clientUrl(extra = {}) {
  const response = await fetch(`${server.origin}/api/_rt/ws`, { headers: { "x-apikey": SERVER_KEY } });
  assert.equal(response.status, 200, await response.clone().text());
  const url = new URL((await response.text()).trim());
  for (const [name, value] of Object.entries(extra)) url.searchParams.set(name, value);
  return url.toString();
}

/** A started client that records its connected events and server and group messages. */
async function startClient(url, protocol) {
  const client = new WebPubSubClient(url, {
    protocol,
    messageRetryOptions: { maxRetries: 0 },
    ...KEEPALIVE,
  });
  const c = { client, connected: [], serverMessages: [], groupMessages: [] };
  client.on("connected", (e) => c.connected.push(e));
  client.on("server-message", (e) => c.serverMessages.push(e.message));
  client.on("group-message", (e) => c.groupMessages.push(e.message));
  clients.push(c);
  await client.start();
  await waitFor(() => c.connected.length > 0, "the connected message");
  return c;
}

/** The handler's record once `ready(record)` holds. */
async function receivedWhen(ready, what) {
  let seen = await handler.received();
  const deadline = Date.now() + 10_000;
  while (!ready(seen)) {
    if (Date.now() > deadline) assert.fail(`the handler never received ${what}: ${JSON.stringify(seen).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
    seen = await handler.received();
  }
  return seen;
}

const eventsOf = (seen, connectionId) => seen.events.filter((e) => e.context.connectionId === connectionId);

before(async () => {
  handler = await startHandler();
  server = await startServer([], {
    config: `[webpubsub]\naccess_key = ${JSON.stringify(ACCESS_KEY)}\nevent_handler = ${JSON.stringify(`${handler.origin}/eventhandler`)}\n`,
  });
});

after(async () => {
  for (const c of clients) c.client.stop();
  await server?.stop();
  handler?.stop();
});

for (const [name, protocol] of [
  ["json.reliable.webpubsub.azure.v1", WebPubSubJsonReliableProtocol()],
  ["json.webpubsub.azure.v1", WebPubSubJsonProtocol()],
]) {
  test(`${name}: sendEvent is acked after the handler's reply arrived as a server message`, async () => {
    const c = await startClient(await clientUrl(), protocol);
    const connectionId = c.connected[0].connectionId;

    const json = await c.client.sendEvent("echo", { n: 1 }, "json");
    assert.equal(json.isDuplicated, false);
    // The reply came before the ack resolved the call.
    assert.equal(c.serverMessages.length, 1);
    assert.equal(c.serverMessages[0].dataType, "json");
    assert.deepEqual(c.serverMessages[0].data, { echo: { n: 1 }, states: { seenConnect: true } });

    await c.client.sendEvent("echo", "hi", "text");
    assert.equal(c.serverMessages.length, 2);
    assert.equal(c.serverMessages[1].dataType, "text");
    assert.equal(c.serverMessages[1].data, "echo: hi");

    await c.client.sendEvent("echo", new Uint8Array([1, 2, 255]).buffer, "binary");
    assert.equal(c.serverMessages.length, 3);
    assert.equal(c.serverMessages[2].dataType, "binary");
    assert.deepEqual([...new Uint8Array(c.serverMessages[2].data)], [...Buffer.from("echo:"), 1, 2, 255]);

    // No body: an ack and no message.
    await c.client.sendEvent("silent", "x", "text");
    assert.equal(c.serverMessages.length, 3);

    // A handler failure is the ack's InternalServerError.
    await assert.rejects(c.client.sendEvent("fail", "x", "text"), (error) => {
      assert.equal(error.errorDetail?.name, "InternalServerError", String(error));
      return true;
    });
    assert.equal(c.serverMessages.length, 3);

    const seen = await receivedWhen((s) => eventsOf(s, connectionId).some((e) => e.kind === "connected"), "connected");
    const kinds = eventsOf(seen, connectionId).map((e) => e.kind);
    assert.deepEqual(kinds.filter((k) => k !== "connected"), ["connect", "user", "user", "user", "user", "user"]);
    const posts = seen.requests.filter((r) => r.method === "POST" && r.headers["ce-connectionid"] === connectionId);
    assert.ok(posts.every((p) => p.signatureValid), JSON.stringify(posts.map((p) => p.headers)));
    assert.ok(posts.every((p) => p.headers["ce-hub"] === "app"));
  });
}

test("the connect handler's userId and groups apply; disconnected follows stop()", async () => {
  const c = await startClient(await clientUrl({ override: "1" }), WebPubSubJsonReliableProtocol());
  const connected = c.connected[0];
  assert.equal(connected.userId, "override-user");

  // The handler's groups were joined: a REST send to each reaches the client.
  for (const channel of ["g1", "g2"]) {
    const [status, body] = await post(server, "/api/_rt/send", { channel, body: `to ${channel}` }, { "x-apikey": SERVER_KEY });
    assert.ok(status >= 200 && status < 300, `${status} ${JSON.stringify(body)}`);
  }
  await waitFor(() => c.groupMessages.length >= 2, "the two group messages", 10_000,
    () => JSON.stringify(c.groupMessages));
  assert.deepEqual(c.groupMessages.map((m) => m.group).sort(), ["app:g1", "app:g2"]);

  c.client.stop();
  const seen = await receivedWhen(
    (s) => eventsOf(s, connected.connectionId).some((e) => e.kind === "disconnected"), "disconnected");
  const events = eventsOf(seen, connected.connectionId);
  assert.deepEqual(events.map((e) => e.kind), ["connect", "connected", "disconnected"]);
  assert.equal(events[1].context.userId, "override-user");
  assert.deepEqual(events[1].context.states, { seenConnect: true });
  assert.ok(events[0].query.override, JSON.stringify(events[0].query));
});
