// Web PubSub connections in rthub's one group space: with @microsoft/signalr (JSON and
// MessagePack) and REST sends in the same channel, each receiving in its own protocol's shape
// (PRODUCT.md section 5); and collection changes through `_listen {type: "ws"}` as Web PubSub
// group messages, with id and lookupIds filters, surviving a cut socket on the reliable protocol.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import {
  MATRIX, WPS_KEY, startWpsServer, accessUrl, viaOrigin, startClient, stopClients, startProxy,
  signalrClient, waitForMessage, waitFor, sleep, group,
} from "./helpers/webpubsub.mjs";
import { post } from "./helpers/server.mjs";

const serverKey = { "x-apikey": WPS_KEY };
let server, proxy;
const signalrConnections = [];
before(async () => {
  server = await startWpsServer();
  proxy = await startProxy(server.port);
});
after(async () => {
  await Promise.all(signalrConnections.map((c) => c.stop().catch(() => {})));
  await stopClients();
  await proxy?.close();
  await server?.stop();
});

const entryOf = (version, protocol) => MATRIX.find((e) => e.version.startsWith(version) && e.protocol.name === protocol);
const wps = async (version, protocol, user, options = {}) =>
  startClient(entryOf(version, protocol), await accessUrl(server, { who: { user } }), options);
const signalr = async (protocol, user) => {
  const c = await signalrClient(server, { protocol, user });
  signalrConnections.push(c);
  return c;
};

async function rest(method, path, body) {
  const response = await fetch(server.origin + path, {
    method, headers: { "content-type": "application/json", ...serverKey }, body: body && JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* keep the text */ }
  if (method !== "GET" && response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return [response.status, parsed];
}
const listen = (c, extra = {}, collection = "customers") =>
  post(server, `/api/${collection}/_listen`, { connectionId: c.connectionId, type: "ws", ...extra }, serverKey);

describe("one channel, every protocol", () => {
  test("Web PubSub (both subprotocols), SignalR JSON and MessagePack and REST reach each other", async () => {
    const g = group("mixed");
    const wj = await wps("1.1", "json", "wps-json");
    const wr = await wps("1.0", "reliable", "wps-reliable");
    const sj = await signalr("json", "sr-json");
    const sm = await signalr("messagepack", "sr-msgpack");
    const gotSj = [], gotSm = [];
    sj.on("message", (m) => { gotSj.push(m); });
    sm.on("message", (m) => { gotSm.push(m); });
    await wj.client.joinGroup(g);
    await wr.client.joinGroup(g);
    await sj.invoke("JoinGroup", g);
    await sm.invoke("JoinGroup", g);

    // Presence lists every member with its protocol.
    const listed = await fetch(`${server.origin}/api/_rt/channels/${g.slice("app:".length)}/members`, { headers: serverKey });
    assert.equal(listed.status, 200);
    const presence = await listed.json();
    assert.equal(presence.count, 4);
    const byId = Object.fromEntries(presence.members.map((m) => [m.connectionId, [m.userId, m.protocol, m.readOnly]]));
    assert.deepEqual(byId, {
      [wj.connectionId]: ["wps-json", "webpubsub.json", false],
      [wr.connectionId]: ["wps-reliable", "webpubsub.json.reliable", false],
      [sj.connectionId]: ["sr-json", "signalr.json", false],
      [sm.connectionId]: ["sr-msgpack", "signalr.messagepack", false],
    });

    // Who sends: its user and connection id as the others must see them (REST: neither).
    const senders = {
      "wps-json": { user: "wps-json", connectionId: wj.connectionId, send: (d) => wj.client.sendToGroup(g, d, "json") },
      "wps-reliable": { user: "wps-reliable", connectionId: wr.connectionId, send: (d) => wr.client.sendToGroup(g, d, "json") },
      "sr-json": { user: "sr-json", connectionId: sj.connectionId, send: (d) => sj.invoke("SendToGroup", g, d) },
      "sr-msgpack": { user: "sr-msgpack", connectionId: sm.connectionId, send: (d) => sm.invoke("SendToGroup", g, d) },
      rest: {
        user: null, connectionId: null,
        send: async (d) => {
          const [status, body] = await post(server, "/api/_rt/send", { channel: g.slice("app:".length), body: d }, serverKey);
          assert.equal(status, 200, `POST /api/_rt/send: ${JSON.stringify(body)}`);
        },
      },
    };
    for (const [name, s] of Object.entries(senders)) await s.send({ from: name, text: "héllo ✓", n: [1, -2, 300000] });
    const count = Object.keys(senders).length;
    const wpsOf = (c) => c.messages.filter((m) => m.group === g);
    await waitFor(() => wpsOf(wj).length >= count && wpsOf(wr).length >= count && gotSj.length >= count && gotSm.length >= count,
      `${count} messages at each of the four connections`, 10_000,
      () => JSON.stringify({ wj: wpsOf(wj).map((m) => m.data.from), wr: wpsOf(wr).map((m) => m.data.from), sj: gotSj.map((m) => m.data?.from), sm: gotSm.map((m) => m.data?.from) }));
    await sleep(100);

    for (const [label, c] of [["Web PubSub json", wj], ["Web PubSub reliable", wr]]) {
      const got = wpsOf(c);
      assert.equal(got.length, count, `${label}: one message from each sender, got ${JSON.stringify(got.map((m) => m.data.from))}`);
      for (const [name, s] of Object.entries(senders)) {
        const m = got.find((x) => x.data.from === name);
        assert.ok(m, `${label} got the message from ${name}`);
        assert.deepEqual([m.type, m.from, m.group, m.dataType], ["message", "group", g, "json"], `${label} from ${name}: ${JSON.stringify(m)}`);
        assert.deepEqual(m.data, { from: name, text: "héllo ✓", n: [1, -2, 300000] });
        if (s.user === null) assert.ok(m.fromUserId == null, `${label} from REST: no fromUserId, got ${JSON.stringify(m.fromUserId)}`);
        else assert.equal(m.fromUserId, s.user, `${label} from ${name}: fromUserId`);
      }
    }
    for (const [label, got] of [["SignalR JSON", gotSj], ["SignalR MessagePack", gotSm]]) {
      assert.equal(got.length, count, `${label}: one message from each sender, got ${JSON.stringify(got.map((m) => m.data?.from))}`);
      for (const [name, s] of Object.entries(senders)) {
        const m = got.find((x) => x.data?.from === name);
        assert.deepEqual(m, {
          group: g, data: { from: name, text: "héllo ✓", n: [1, -2, 300000] }, fromUserId: s.user, fromConnectionId: s.connectionId,
        }, `${label}: the message from ${name}`);
      }
    }
  });

  test("a Web PubSub connection id works with POST /api/_rt/join and /api/_rt/leave", async () => {
    const c = await wps("1.1", "reliable", "joined-by-rest");
    const channel = `rest-joined-${process.pid}`;
    const [status, body] = await post(server, "/api/_rt/join", { connectionId: c.connectionId, channel }, serverKey);
    assert.equal(status, 200, JSON.stringify(body));
    const signalrSender = await signalr("json", "sr-sender");
    await signalrSender.invoke("SendToGroup", `app:${channel}`, { hi: 1 });
    const m = await waitForMessage(c, (x) => x.group === `app:${channel}`, "the SignalR message after a REST join");
    assert.equal(m.fromUserId, "sr-sender");
    const [left] = await post(server, "/api/_rt/leave", { connectionId: c.connectionId, channel }, serverKey);
    assert.equal(left, 200);
    const marker = group("leave-marker");
    await c.client.joinGroup(marker);
    await signalrSender.invoke("SendToGroup", `app:${channel}`, { hi: 2 });
    await signalrSender.invoke("SendToGroup", marker, "marker");
    await waitForMessage(c, (x) => x.group === marker, "the marker");
    await sleep(50);
    assert.ok(!c.messages.some((x) => x.data?.hi === 2), "nothing after the REST leave");
  });
});

/** The Web PubSub change messages of `collection` that `c` has. */
const changes = (c, collection = "customers") => c.messages.filter((m) => m.group === `app:${collection}`);

function assertChangeMessage(m, operation, item) {
  assert.deepEqual([m.type, m.from, m.group, m.dataType], ["message", "group", "app:customers", "json"], JSON.stringify(m));
  assert.deepEqual(Object.keys(m.data).sort(), ["collection", "data", "id", "operation", "seq", "ts"], JSON.stringify(m.data));
  assert.equal(m.data.collection, "customers");
  assert.equal(m.data.operation, operation);
  assert.equal(m.data.id, item.id);
  assert.deepEqual(m.data.data, item);
  assert.equal(typeof m.data.seq, "number");
  assert.ok(!Number.isNaN(Date.parse(m.data.ts)), `ts is a date: ${m.data.ts}`);
}

for (const protocol of ["json", "reliable"]) {
  describe(`_listen with a Web PubSub ${protocol} connection`, () => {
    test("create, update and delete arrive as app:customers group messages", async () => {
      const c = await wps("1.1", protocol, `listener-${protocol}`);
      assert.deepEqual(await listen(c), [200, { listening: true }]);
      const [, created] = await rest("POST", "/api/customers", { name: `Ada ${protocol}` });
      const [, patched] = await rest("PATCH", `/api/customers/${created.id}`, { vip: true });
      await rest("DELETE", `/api/customers/${created.id}`);
      await waitFor(() => changes(c).length >= 3, "three change messages", 10_000, () => JSON.stringify(c.messages));
      const [a, b, d] = changes(c);
      assertChangeMessage(a, "create", created);
      assertChangeMessage(b, "update", patched);
      assertChangeMessage(d, "delete", patched);
      assert.ok(a.data.seq < b.data.seq && b.data.seq < d.data.seq, "seq increases in commit order");
      if (protocol === "reliable") assert.ok(changes(c).every((m) => typeof m.sequenceId === "number"));

      assert.deepEqual(await post(server, "/api/customers/_unlisten", { connectionId: c.connectionId, type: "ws" }, serverKey),
        [200, { listening: false }]);
      const other = await wps("1.1", protocol, `listener-after-${protocol}`);
      await listen(other);
      const [, late] = await rest("POST", "/api/customers", { name: "after unlisten" });
      await waitFor(() => changes(other).some((m) => m.data.id === late.id), "the change at a listener that stayed");
      await sleep(100);
      assert.ok(!changes(c).some((m) => m.data.id === late.id), "no change after _unlisten");
    });

    test("id and lookupIds filters", async () => {
      const [, ann] = await rest("POST", "/api/customers", { name: "Ann" });
      const [, ben] = await rest("POST", "/api/customers", { name: "Ben" });
      // A subscription gets what the feed dispatches after it starts: let the setup write be
      // dispatched (seen by a listener) first so it is not counted below.
      const sync = await wps("1.1", protocol, "sync");
      await listen(sync, {}, "orders");
      const [, order] = await rest("POST", "/api/orders", { customer: ann.id, total: 10 });
      await waitFor(() => changes(sync, "orders").some((m) => m.data.id === order.id), "the setup write dispatched");
      const byId = await wps("1.1", protocol, "by-id"), byLookup = await wps("1.1", protocol, "by-lookup");
      assert.deepEqual(await listen(byId, { id: order.id }, "orders"), [200, { listening: true }]);
      assert.deepEqual(await listen(byLookup, { lookupIds: [ben.id] }, "orders"), [200, { listening: true }]);
      const [, benOrder] = await rest("POST", "/api/orders", { customer: ben.id, total: 1 });
      await rest("PATCH", `/api/orders/${order.id}`, { total: 11 });
      await waitFor(() => changes(byId, "orders").length >= 1 && changes(byLookup, "orders").length >= 1, "the filtered changes", 10_000,
        () => JSON.stringify({ byId: changes(byId, "orders"), byLookup: changes(byLookup, "orders") }));
      // Both writes are at the unfiltered listener once the later one is: the filtered ones would have them too.
      await waitFor(() => changes(sync, "orders").some((m) => m.data.id === order.id && m.data.operation === "update"), "the update at the sync listener");
      await sleep(100);
      assert.deepEqual(changes(byId, "orders").map((m) => [m.data.id, m.data.operation]), [[order.id, "update"]]);
      assert.deepEqual(changes(byLookup, "orders").map((m) => [m.data.id, m.data.data.customer]), [[benOrder.id, ben.id]]);
      assert.ok(changes(byId, "orders").every((m) => m.group === "app:orders" && m.dataType === "json"));
    });
  });
}

test("_listen refusals: unknown connection 404, unknown collection 404, bad type 400", async () => {
  const c = await wps("1.1", "json", "refusals");
  assert.equal((await post(server, "/api/customers/_listen", { connectionId: "not-a-connection-0000000", type: "ws" }, serverKey))[0], 404);
  assert.equal((await post(server, "/api/nothing/_listen", { connectionId: c.connectionId, type: "ws" }, serverKey))[0], 404);
  assert.equal((await post(server, "/api/customers/_listen", { connectionId: c.connectionId, type: "carrier-pigeon" }, serverKey))[0], 400);
});

for (const version of ["1.1", "1.0"]) {
  test(`${version} reliable: changes written while the socket is cut arrive after recovery, in seq order, none twice`, async () => {
    const entry = entryOf(version, "reliable");
    const url = viaOrigin(await accessUrl(server, { who: { user: `listen-recover-${version}` }, origin: proxy.origin }), proxy.origin);
    const c = await startClient(entry, url);
    assert.deepEqual(await listen(c), [200, { listening: true }]);
    const N = 60;
    let cut = 0;
    c.client.on("group-message", () => {
      if (changes(c).length === 20 && cut === 0) cut = proxy.cut();
    });
    const created = [];
    for (let i = 0; i < N; i += 1) created.push((await rest("POST", "/api/customers", { name: `recover ${version} ${i}` }))[1]);
    assert.ok(cut >= 1, "the socket was cut");
    const mine = () => changes(c).filter((m) => created.some((x) => x.id === m.data.id));
    await waitFor(() => mine().length >= N, `${N} changes after the cut`, 45_000,
      () => `got ${mine().length}; connected ${JSON.stringify(c.connected)}, disconnected ${JSON.stringify(c.disconnected)}`);
    await sleep(300);
    const got = mine();
    assert.equal(got.length, N, "each change exactly once");
    assert.deepEqual(got.map((m) => m.data.id), created.map((x) => x.id), "in the order written");
    assert.ok(got.every((m, i) => i === 0 || m.data.seq > got[i - 1].data.seq), "seq increases");
    assert.deepEqual([c.connected.length, c.disconnected.length], [1, 0], "recovered, not reconnected");
    assert.equal(c.client._connectionId, c.connectionId, "the same connection");
  });
}
