// No sticky sessions: three rthub nodes joined by Redis behind a round-robin HTTP proxy
// (helpers/cluster.mjs), so each request and each WebSocket upgrade goes to the next node.
// The official @microsoft/signalr client works on every transport with JSON and MessagePack
// (its negotiate, socket, event stream, polls and sends land on different nodes, which
// forward them to the node that has the connection), and a reliable @azure/web-pubsub-client
// whose socket is cut recovers its connection through whichever node its reconnect reaches.
// Every group message arrives exactly once at every member.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { build, signalR, sleep, waitFor } from "./helpers/server.mjs";
import { VERSIONS, PROTOCOLS, WPS_KEY, accessUrl, startClient, stopClients } from "./helpers/webpubsub.mjs";
import { startCluster, startRoundRobinProxy } from "./helpers/cluster.mjs";

const { WebSockets, ServerSentEvents, LongPolling } = signalR.HttpTransportType;
const RECOVERY_MS = 45_000;

let cluster, proxy;
before(async () => {
  cluster = await startCluster(3, { webpubsub: { recovery_secs: 30 }, args: ["--signalr-long-poll-secs", "5"] });
  proxy = await startRoundRobinProxy(cluster.nodes);
});
after(async () => {
  await stopClients();
  await proxy?.close();
  await cluster?.stop();
});

let groups = 0;
const group = (name) => `app:${name}-${process.pid}-${++groups}`;

/** The `id` (connection token) of a logged request, if it has one. */
const tokenOf = (entry) => new URL(entry.url, "http://x").searchParams.get("id");

/** The node a token's hint names (its owner), as an index into the cluster's nodes. */
const ownerOf = (token) => cluster.nodes.findIndex((n) => token.startsWith(`${n.node}.`));

/** Every transport request of the connection with `token`, as the proxy logged it. */
const requestsOf = (token) => proxy.log.filter((e) => tokenOf(e) === token);

describe("@microsoft/signalr through a round-robin proxy", () => {
  const kinds = [
    { label: "WebSockets + json", transport: WebSockets, protocol: "json" },
    { label: "ServerSentEvents + json", transport: ServerSentEvents, protocol: "json" },
    { label: "LongPolling + json", transport: LongPolling, protocol: "json" },
    { label: "WebSockets + messagepack", transport: WebSockets, protocol: "messagepack" },
    { label: "LongPolling + messagepack", transport: LongPolling, protocol: "messagepack" },
  ];

  test("every transport and protocol: group messages reach every member exactly once", async () => {
    const g = group("signalr");
    const members = [];
    try {
      for (const kind of kinds) {
        const connection = build({ hubUrl: proxy.hubUrl }, { transport: kind.transport, protocol: kind.protocol });
        const received = [];
        connection.on("message", (payload) => { received.push(payload.data); });
        await connection.start();
        await connection.invoke("JoinGroup", g);
        members.push({ ...kind, connection, received });
      }
      const PER_SENDER = 6;
      for (let n = 0; n < PER_SENDER; n += 1) {
        for (const member of members) await member.connection.invoke("SendToGroup", g, { from: member.label, n });
      }
      const expected = members.length * PER_SENDER;
      for (const member of members) {
        await waitFor(() => member.received.length >= expected, `${member.label}: ${expected} messages`, 15_000,
          () => `got ${member.received.length}`);
      }
      await sleep(500); // a duplicate would come now
      const keys = (list) => list.map((m) => `${m.from}#${m.n}`).sort();
      const all = keys(members.flatMap((m) => Array.from({ length: PER_SENDER }, (_, n) => ({ from: m.label, n }))));
      for (const member of members) {
        assert.deepEqual(keys(member.received), all, `${member.label}: each message exactly once`);
        // Each sender's own messages in the order it sent them.
        for (const sender of members) {
          const order = member.received.filter((m) => m.from === sender.label).map((m) => m.n);
          assert.deepEqual(order, Array.from({ length: PER_SENDER }, (_, n) => n), `${member.label} from ${sender.label}`);
        }
      }
      // Each connection's transport requests reached nodes other than its own.
      const tokens = [...new Set(proxy.log.map(tokenOf).filter(Boolean))];
      assert.ok(tokens.length >= members.length, `a token per connection: ${tokens.length}`);
      for (const token of tokens) {
        const owner = ownerOf(token);
        assert.ok(owner >= 0, `the token names a node of the cluster: ${token.slice(0, 20)}…`);
        const elsewhere = requestsOf(token).filter((e) => e.node !== owner);
        assert.ok(elsewhere.length >= 1, `a request of ${token.slice(0, 17)}… went to another node: ${JSON.stringify(requestsOf(token).map((e) => [e.node, e.method, e.upgrade]))}`);
      }
      // The long pollers' (and event streams') many requests were spread over the nodes.
      for (const token of tokens.filter((t) => requestsOf(t).length > 3)) {
        const nodes = new Set(requestsOf(token).map((e) => e.node));
        assert.ok(nodes.size >= 2, `the requests of ${token.slice(0, 17)}… went to ${nodes.size} node(s)`);
      }
    } finally {
      for (const member of members) await member.connection.stop().catch(() => {});
    }
    // stop() went through (a DELETE for long polling, a closed stream, a Close): no connection is left.
    for (const member of members) assert.equal(member.connection.state, signalR.HubConnectionState.Disconnected, member.label);
  });

  test("stop() through another node ends the connection without an error", async () => {
    for (const kind of kinds) {
      const connection = build({ hubUrl: proxy.hubUrl }, { transport: kind.transport, protocol: kind.protocol });
      const closed = new Promise((resolve) => connection.onclose(resolve));
      await connection.start();
      await connection.invoke("JoinGroup", group("stop"));
      await connection.stop();
      assert.equal(await closed, undefined, kind.label);
    }
  });
});

describe("@azure/web-pubsub-client through a round-robin proxy", () => {
  const reliable = PROTOCOLS.find((p) => p.reliable);
  const json = PROTOCOLS.find((p) => !p.reliable);

  /** A server's send to `g` through the proxy (so through any node). */
  const send = async (g, n) => {
    const response = await fetch(`${proxy.origin}/api/_rt/send`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-apikey": WPS_KEY },
      body: JSON.stringify({ channel: g.slice("app:".length), body: { n } }),
    });
    assert.equal(response.status, 200, await response.text());
  };

  for (const version of VERSIONS) {
    test(`${version.version} reliable: a cut socket recovers through another node, every message once`, async () => {
      const g = group("wps");
      const entry = { ...version, protocol: reliable, label: `${version.version} reliable` };
      const url = await accessUrl(cluster.nodes[0], { who: { user: "wps-rx" }, origin: proxy.origin });
      assert.ok(url.startsWith(proxy.origin.replace("http", "ws")), url);
      const mark = proxy.log.length;
      const receiver = await startClient(entry, url);
      const receiverUpgrade = proxy.log.slice(mark).find((e) => e.upgrade);
      // A plain JSON member too: it is not recovered, but never gets a message twice.
      const plain = await startClient({ ...version, protocol: json, label: `${version.version} json` }, url);
      await receiver.client.joinGroup(g);
      await plain.client.joinGroup(g);
      const id = receiver.connectionId;
      const numbers = (c) => c.messages.filter((m) => m.group === g).map((m) => m.data.n);
      let n = 0;
      for (; n < 10; n += 1) await send(g, n);
      await waitFor(() => numbers(receiver).length >= 10, "the first 10", 10_000);
      // Cut until a recovery has gone through a node other than the one with the connection.
      let viaAnother = false;
      for (let cut = 0; cut < 4 && !viaAnother; cut += 1) {
        const before = proxy.log.length;
        assert.ok(proxy.cutSockets() >= 1, "the receiver's socket was cut");
        for (let k = 0; k < 5; k += 1, n += 1) await send(g, n);
        await waitFor(() => proxy.log.slice(before).some((e) => e.upgrade && e.url.includes(`awps_connection_id=${encodeURIComponent(id)}`)),
          "a recovery request", RECOVERY_MS);
        await waitFor(() => numbers(receiver).length >= n, `${n} messages after cut ${cut + 1}`, RECOVERY_MS,
          () => `got ${numbers(receiver).length}; disconnected ${JSON.stringify(receiver.disconnected)}`);
        const recoveries = proxy.log.slice(before).filter((e) => e.upgrade && e.url.includes("awps_connection_id"));
        viaAnother = recoveries.some((e) => e.node !== receiverUpgrade.node);
      }
      assert.ok(viaAnother, `a recovery reached another node: ${JSON.stringify(proxy.log.filter((e) => e.upgrade).map((e) => e.node))}`);
      await waitFor(() => plain.connected.length >= 2 || numbers(plain).length >= n, "the plain client back", RECOVERY_MS);
      await sleep(500);
      const got = numbers(receiver);
      assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i), `every message exactly once: ${JSON.stringify(got)}`);
      const seqs = receiver.messages.filter((m) => m.group === g).map((m) => m.sequenceId);
      assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `consecutive sequence ids: ${JSON.stringify(seqs)}`);
      assert.equal(receiver.disconnected.length, 0, `never disconnected: ${JSON.stringify(receiver.disconnected)}`);
      assert.equal(receiver.connected.length, 1, "one connection all along (no fresh start)");
      assert.equal(receiver.client._connectionId, id, "the same connection id");
      const plainGot = numbers(plain);
      assert.equal(new Set(plainGot).size, plainGot.length, `the plain client never got one twice: ${JSON.stringify(plainGot)}`);
      receiver.client.stop();
      plain.client.stop();
    });
  }
});
