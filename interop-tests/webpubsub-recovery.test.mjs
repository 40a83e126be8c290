// Reliable Web PubSub connections (json.reliable.webpubsub.azure.v1) that lose their socket:
// the official clients (1.1.0, 1.0.4) reconnect with awps_connection_id and
// awps_reconnection_token and must get every message exactly once, in order, on the same
// connection. The socket is cut by a TCP proxy between client and server. Wrong tokens and
// unknown connections are refused (close 1008 or an HTTP error), and the raw protocol's resend
// of unacked messages keeps their sequence ids. Limits and malformed frames close with their
// codes (1009, 1003, 1007; 1008 for an unacked overflow, which cannot be recovered).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import {
  VERSIONS, PROTOCOLS, WPS_KEY, startWpsServer, accessUrl, viaOrigin, startClient, stopClients, startProxy,
  waitForMessage, waitFor, sleep, group, WebSocket, withTimeout,
} from "./helpers/webpubsub.mjs";

const RELIABLE = "json.reliable.webpubsub.azure.v1";
const reliable = PROTOCOLS.find((p) => p.reliable);
const entries = VERSIONS.map((v) => ({ ...v, protocol: reliable, label: `${v.version} reliable` }));
// Recovery retries every second for up to 30 s; a fresh start after a refusal comes after it.
const RECOVERY_MS = 45_000;

let server, proxy;
before(async () => {
  server = await startWpsServer();
  proxy = await startProxy(server.port);
});
after(async () => {
  await stopClients();
  await proxy?.close();
  await server?.stop();
});

/** A client URL whose connections go through the proxy (asked through it too, so any host in the token matches). */
async function proxiedUrl(user) {
  return viaOrigin(await accessUrl(server, { who: { user }, origin: proxy.origin }), proxy.origin);
}

const numbers = (c, g) => c.messages.filter((m) => m.group === g).map((m) => m.data.n);
const range = (n) => Array.from({ length: n }, (_, i) => i);

/** Says what a receiver's recovery looked like, for failure messages. */
const story = (c, g) => () => {
  const got = numbers(c, g);
  const missing = range(Math.max(0, ...got) + 1).filter((n) => !got.includes(n));
  return `got ${got.length} (missing ${JSON.stringify(missing.slice(0, 20))}), connected ${JSON.stringify(c.connected)}, ` +
    `disconnected ${JSON.stringify(c.disconnected)}, proxy requests ${JSON.stringify(proxy.requests.slice(-4)).slice(0, 800)}`;
};

/** Asserts `c` got exactly 0..n-1 on `g`, once each in order, and stayed one connection. */
function assertRecovered(c, g, n, connectionId) {
  const got = numbers(c, g);
  assert.equal(got.length, n, `every message exactly once: ${story(c, g)()}`);
  assert.deepEqual(got, range(n), "in the order sent");
  const seqs = c.messages.filter((m) => m.group === g).map((m) => m.sequenceId);
  assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `consecutive sequence ids: ${JSON.stringify(seqs.slice(0, 40))}…`);
  assert.equal(c.disconnected.length, 0, `no disconnected event: ${JSON.stringify(c.disconnected)}`);
  assert.equal(c.connected.length, 1, `no second connected event (a fresh connection): ${JSON.stringify(c.connected)}`);
  // The SDK keeps the id of its current connection in a private field (both versions).
  assert.equal(c.client._connectionId, connectionId, "the same connection id after recovery");
  const recovery = proxy.requests.find((r) => r.includes(`awps_connection_id=${encodeURIComponent(connectionId)}`));
  assert.ok(recovery, `the client asked to recover its connection: ${JSON.stringify(proxy.requests.slice(-4))}`);
  assert.match(recovery, /awps_reconnection_token=[^&\s]+/);
}

for (const entry of entries) {
  describe(entry.label, () => {
    test("a socket cut mid-stream: recovered, every message once and in order", async () => {
      const g = group("flood");
      const receiver = await startClient(entry, await proxiedUrl(`flood-rx-${entry.version}`));
      await receiver.client.joinGroup(g);
      const sender = await startClient(entry, await accessUrl(server, { who: { user: "flood-tx" } }));
      const N = 400, CUT_AT = 100;
      let cuts = 0;
      receiver.client.on("group-message", () => {
        if (numbers(receiver, g).length === CUT_AT && cuts === 0) cuts = proxy.cut(); // the receiver's socket, at least
      });
      for (let n = 0; n < N; n += 1) await sender.client.sendToGroup(g, { n }, "json");
      assert.ok(cuts >= 1, `the proxy cut the receiver's socket (cut ${cuts} sockets)`);
      await waitFor(() => numbers(receiver, g).length >= N, `${N} messages after the cut`, RECOVERY_MS, story(receiver, g));
      await sleep(300);
      assertRecovered(receiver, g, N, receiver.connectionId);
      receiver.client.stop();
      sender.client.stop();
    });

    test("two cuts, the second with reconnects refused for a while: still every message once", async () => {
      const g = group("outage");
      const receiver = await startClient(entry, await proxiedUrl(`outage-rx-${entry.version}`));
      await receiver.client.joinGroup(g);
      const sender = await startClient(entry, await accessUrl(server, { who: { user: "outage-tx" } }));
      const N = 300;
      let cuts = 0;
      receiver.client.on("group-message", () => {
        const got = numbers(receiver, g).length;
        if (got === 50 && cuts === 0) cuts = proxy.cut() && 1;
        if (got === 150 && cuts === 1) {
          // The client's recovery attempts meet resets for 2.5 s before one gets through.
          proxy.refuse(true);
          cuts = proxy.cut() && 2;
          setTimeout(() => proxy.refuse(false), 2500);
        }
      });
      try {
        for (let n = 0; n < N; n += 1) await sender.client.sendToGroup(g, { n }, "json");
        await waitFor(() => numbers(receiver, g).length >= N, `${N} messages after two cuts`, RECOVERY_MS, story(receiver, g));
      } finally {
        proxy.refuse(false);
      }
      assert.equal(cuts, 2, "both cuts happened");
      await sleep(300);
      assertRecovered(receiver, g, N, receiver.connectionId);
      receiver.client.stop();
      sender.client.stop();
    });

    test("a wrong reconnection token: refused, and the client starts afresh with a new connection", async () => {
      const g = group("spoiled");
      const c = await startClient(entry, await proxiedUrl(`spoiled-${entry.version}`));
      await c.client.joinGroup(g);
      proxy.rewrite((head) => head.replace(/awps_reconnection_token=[^&\s]*/, "awps_reconnection_token=not-the-token"));
      try {
        proxy.cut();
        await waitFor(() => c.connected.length > 1, "a fresh connected event after the refused recovery", RECOVERY_MS,
          () => `connected ${JSON.stringify(c.connected)}, disconnected ${JSON.stringify(c.disconnected)}, requests ${JSON.stringify(proxy.requests.slice(-4)).slice(0, 800)}`);
      } finally {
        proxy.rewrite(null);
      }
      assert.ok(proxy.requests.some((r) => r.includes("awps_reconnection_token=")), "a recovery was attempted");
      assert.equal(c.disconnected.length, 1, "one disconnected event before the fresh start");
      assert.notEqual(c.connected[1].connectionId, c.connectionId, "a new connection id");
      const sender = await startClient(entry, await accessUrl(server, { who: { user: "spoiled-tx" } }));
      // The client rejoins its groups on a fresh connection (autoRejoinGroups) before it
      // fires connected, so the group works now.
      await sender.client.sendToGroup(g, { n: 0, after: "fresh start" }, "json");
      await waitForMessage(c, (m) => m.group === g && m.data.after === "fresh start", "a message on the rejoined group");
      assert.deepEqual(c.rejoinFailed, []);
      c.client.stop();
      sender.client.stop();
    });
  });
}

/** A raw WebSocket on the reliable subprotocol; records frames; resolves once settled. */
function raw(url, protocol = RELIABLE) {
  const ws = new WebSocket(url, protocol);
  const r = { ws, frames: [], opened: false, close: null, refused: null };
  ws.on("message", (data) => { r.frames.push(JSON.parse(data.toString())); });
  r.settled = new Promise((resolve) => {
    ws.on("open", () => { r.opened = true; resolve(); });
    ws.on("unexpected-response", (_req, res) => { r.refused = res.statusCode; res.resume(); resolve(); });
    ws.on("error", (e) => { r.error = e.message; resolve(); });
    ws.on("close", (code, reason) => { r.close = { code, reason: reason.toString() }; resolve(); });
  });
  r.closed = new Promise((resolve) => ws.on("close", resolve));
  r.frame = (match, what) => waitFor(() => r.frames.some(match), what, 10_000, () => JSON.stringify(r.frames).slice(0, 800))
    .then(() => r.frames.find(match));
  r.send = (message) => ws.send(JSON.stringify(message));
  return r;
}

/** Expects a recovery attempt to be refused: close 1008 after the upgrade, or an HTTP error. */
async function expectRefused(url, what, t) {
  const r = raw(url);
  await withTimeout(r.settled, `the answer to ${what}`);
  if (r.opened) await withTimeout(r.closed, `the close of ${what}`);
  if (r.refused !== null) {
    assert.ok(r.refused >= 400 && r.refused < 500, `${what}: refused with HTTP ${r.refused}`);
    t.diagnostic(`${what}: HTTP ${r.refused}`);
  } else {
    assert.equal(r.close?.code, 1008, `${what}: expected close 1008 or an HTTP 4xx, got ${JSON.stringify({ close: r.close, error: r.error })}`);
    assert.ok(!r.frames.some((f) => f.type === "message"), `${what}: no messages before the close: ${JSON.stringify(r.frames)}`);
    t.diagnostic(`${what}: close 1008 (${r.close.reason})`);
  }
}

describe("raw json.reliable.webpubsub.azure.v1", () => {
  test("a wrong token or an unknown connection id is refused; the real connection is untouched", async (t) => {
    const url = await accessUrl(server, { who: { user: "raw-victim" } });
    const victim = raw(url);
    const connected = await victim.frame((f) => f.type === "system" && f.event === "connected", "system/connected");
    assert.equal(typeof connected.reconnectionToken, "string", `a reliable connected message has a reconnectionToken: ${JSON.stringify(connected)}`);
    const id = encodeURIComponent(connected.connectionId);
    await expectRefused(`${url}&awps_connection_id=${id}&awps_reconnection_token=bad`, "a wrong reconnection token", t);
    await expectRefused(`${url}&awps_connection_id=not-a-connection-0000000&awps_reconnection_token=bad`, "an unknown connection id", t);
    await expectRefused(`${url}&awps_connection_id=${id}&awps_reconnection_token=`, "an empty reconnection token", t);
    const g = group("victim");
    victim.send({ type: "joinGroup", group: g, ackId: 1 });
    assert.deepEqual(await victim.frame((f) => f.type === "ack", "the join ack"), { type: "ack", ackId: 1, success: true });
    victim.ws.close();
  });

  test("recovery resends the unacked messages with their sequence ids, then continues", async () => {
    const url = await accessUrl(server, { who: { user: "raw-recover" } });
    const first = raw(url);
    const connected = await first.frame((f) => f.type === "system" && f.event === "connected", "system/connected");
    const g = group("raw-recover");
    first.send({ type: "joinGroup", group: g, ackId: 1 });
    await first.frame((f) => f.type === "ack" && f.ackId === 1, "the join ack");
    const sender = raw(await accessUrl(server, { who: { user: "raw-sender" } }));
    await sender.frame((f) => f.type === "system", "the sender's connected");
    const send = async (n, ackId) => {
      sender.send({ type: "sendToGroup", group: g, dataType: "json", data: { n }, ackId, noEcho: false });
      await sender.frame((f) => f.type === "ack" && f.ackId === ackId, `the ack of message ${n}`);
    };
    for (let n = 1; n <= 3; n += 1) await send(n, n);
    await waitFor(() => first.frames.filter((f) => f.type === "message").length === 3, "three messages");
    const seqs = first.frames.filter((f) => f.type === "message").map((f) => f.sequenceId);
    assert.deepEqual(seqs, [1, 2, 3], "sequence ids 1, 2, 3");
    // Ack the first only; a ping answered after it shows the server has read the ack.
    first.send({ type: "sequenceAck", sequenceId: 1 });
    first.send({ type: "ping" });
    await first.frame((f) => f.type === "pong", "pong");
    first.ws.terminate();
    await send(4, 4);
    const recovered = raw(`${url}&awps_connection_id=${encodeURIComponent(connected.connectionId)}` +
      `&awps_reconnection_token=${encodeURIComponent(connected.reconnectionToken)}`);
    await withTimeout(recovered.settled, "the recovery upgrade");
    assert.ok(recovered.opened, `recovery accepted: ${JSON.stringify({ refused: recovered.refused, close: recovered.close, error: recovered.error })}`);
    await waitFor(() => recovered.frames.filter((f) => f.type === "message").length >= 3, "the resent and the new messages", 10_000,
      () => JSON.stringify(recovered.frames));
    await send(5, 5);
    await waitFor(() => recovered.frames.filter((f) => f.type === "message").length >= 4, "message 5 after recovery");
    await sleep(200);
    const again = recovered.frames.find((f) => f.type === "system" && f.event === "connected");
    if (again) assert.equal(again.connectionId, connected.connectionId, "a connected message on recovery keeps the connection id");
    const messages = recovered.frames.filter((f) => f.type === "message");
    assert.deepEqual(messages.map((f) => [f.sequenceId, f.data.n]), [[2, 2], [3, 3], [4, 4], [5, 5]],
      "the unacked 2 and 3 again with their ids, then 4 and 5; not the acked 1");
    recovered.ws.close();
    sender.ws.close();
  });
});

describe("raw: limits, malformed frames and the recovery window", () => {
  let limited;
  before(async () => { limited = await startWpsServer({ webpubsub: { max_message_bytes: 4096, max_unacked_messages: 10, recovery_secs: 1 } }); });
  after(async () => { await limited?.stop(); });
  const connect = async (protocol = "json.webpubsub.azure.v1") => {
    const r = raw(await accessUrl(limited, { who: { user: "limits" } }), protocol);
    await r.frame((f) => f.type === "system" && f.event === "connected", "system/connected");
    return r;
  };
  /** Waits for the close; asserts its code and a system/disconnected (with a reason) just before it. */
  const closedWith = async (r, code, what) => {
    await withTimeout(r.closed, `the close after ${what}`);
    assert.equal(r.close.code, code, `${what}: close ${code}, got ${JSON.stringify(r.close)}; frames ${JSON.stringify(r.frames).slice(0, 500)}`);
    const last = r.frames.at(-1);
    assert.deepEqual([last?.type, last?.event], ["system", "disconnected"], `${what}: system/disconnected first: ${JSON.stringify(r.frames)}`);
    assert.equal(typeof last.message, "string");
    return last.message;
  };

  test("a message over max_message_bytes: 1009", async () => {
    const r = await connect();
    r.send({ type: "sendToGroup", group: "app:big", dataType: "text", data: "x".repeat(5000), ackId: 1 });
    assert.match(await closedWith(r, 1009, "a 5000-byte message"), /4096/);
  });

  test("a binary frame on a JSON subprotocol: 1003", async () => {
    const r = await connect();
    r.ws.send(Buffer.from([1, 2, 3]));
    await closedWith(r, 1003, "a binary frame");
  });

  test("a frame that is not a message: 1007", async () => {
    const r = await connect();
    r.ws.send("{ not json");
    await closedWith(r, 1007, "unparseable JSON");
  });

  test("a reliable client that never acks past max_unacked_messages: 1008, and no recovery", async (t) => {
    const url = await accessUrl(limited, { who: { user: "never-acks" } });
    const r = raw(url);
    const connected = await r.frame((f) => f.type === "system" && f.event === "connected", "system/connected");
    const g = group("unacked");
    r.send({ type: "joinGroup", group: g, ackId: 1 });
    await r.frame((f) => f.type === "ack" && f.ackId === 1, "the join ack");
    const sender = await connect();
    for (let n = 0; n < 20; n += 1) {
      sender.send({ type: "sendToGroup", group: g, dataType: "json", data: { n }, ackId: n + 1, noEcho: false });
    }
    await sender.frame((f) => f.type === "ack" && f.ackId === 20, "the sender's last ack");
    await withTimeout(r.closed, "the close of the connection that never acks");
    assert.equal(r.close.code, 1008, `overflow closes with 1008 (do not recover): ${JSON.stringify(r.close)}`);
    await expectRefused(`${url}&awps_connection_id=${encodeURIComponent(connected.connectionId)}` +
      `&awps_reconnection_token=${encodeURIComponent(connected.reconnectionToken)}`, "recovery after overflow", t);
    sender.ws.close();
  });

  test("a dropped connection not recovered within recovery_secs is gone: 1008, out of its groups", async (t) => {
    const url = await accessUrl(limited, { who: { user: "late" } });
    const r = raw(url);
    const connected = await r.frame((f) => f.type === "system" && f.event === "connected", "system/connected");
    const channel = `late-${process.pid}`;
    r.send({ type: "joinGroup", group: `app:${channel}`, ackId: 1 });
    await r.frame((f) => f.type === "ack" && f.ackId === 1, "the join ack");
    r.ws.terminate();
    const members = async () => (await (await fetch(`${limited.origin}/api/_rt/channels/${channel}/members`, { headers: { "x-apikey": WPS_KEY } })).json()).count;
    assert.equal(await members(), 1, "a dropped reliable connection keeps its groups while it may recover");
    // The window is 1 s; the session is dropped some time after it ends.
    let left = 1;
    for (const deadline = Date.now() + 10_000; left !== 0 && Date.now() < deadline; await sleep(100)) left = await members();
    assert.equal(left, 0, "gone from its groups after the recovery window");
    await expectRefused(`${url}&awps_connection_id=${encodeURIComponent(connected.connectionId)}` +
      `&awps_reconnection_token=${encodeURIComponent(connected.reconnectionToken)}`, "recovery after the window", t);
  });
});
