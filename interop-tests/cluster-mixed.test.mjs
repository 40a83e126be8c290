// Two rthub processes joined through Redis (issue 13) as one group space, judged by the official
// clients: @microsoft/signalr (JSON and MessagePack) and @azure/web-pubsub-client (both JSON
// subprotocols) on different nodes in one channel, each message once at every member in the
// sender's order; presence over both nodes; the Web PubSub server SDK on one node acting on
// connections of the other.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import {
  MATRIX, WPS_KEY, startWpsServer, accessUrl, startClient, stopClients, signalrClient, waitFor, sleep, group,
} from "./helpers/webpubsub.mjs";

const REDIS = process.env.RTHUB_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const cluster = `[cluster]\nredis = ${JSON.stringify(REDIS)}\nprefix = "interop-${randomUUID()}"\n`;
const serverKey = { "x-apikey": WPS_KEY };
let a, b;
const signalrConnections = [];

before(async () => {
  [a, b] = await Promise.all([startWpsServer({ extra: cluster }), startWpsServer({ extra: cluster })]);
  for (const node of [a, b]) {
    await waitFor(async () => (await (await fetch(`${node.origin}/readyz`)).json()).cluster?.redis === "up",
      `${node.origin} reaches Redis`, 10_000);
  }
});
after(async () => {
  await Promise.all(signalrConnections.map((c) => c.stop().catch(() => {})));
  await stopClients();
  await Promise.all([a?.stop(), b?.stop()]);
});

const entryOf = (version, protocol) => MATRIX.find((e) => e.version.startsWith(version) && e.protocol.name === protocol);
const wps = async (node, protocol, user, options = {}) =>
  startClient(entryOf("1.1", protocol), await accessUrl(node, { who: { user } }), options);
const signalr = async (node, protocol, user) => {
  const c = await signalrClient(node, { protocol, user });
  signalrConnections.push(c);
  return c;
};
const members = async (node, channel) =>
  (await fetch(`${node.origin}/api/_rt/channels/${channel}/members`, { headers: serverKey })).json();

describe("two nodes, one group space", () => {
  test("every protocol on either node gets every message once, in each sender's order", async () => {
    const g = group("cluster");
    const wj = await wps(a, "json", "wps-a");
    const wr = await wps(b, "reliable", "wps-b");
    const sj = await signalr(b, "json", "sr-b");
    const sm = await signalr(a, "messagepack", "sr-a");
    const got = { sj: [], sm: [] };
    sj.on("message", (m) => { if (m.group === g) got.sj.push(m); });
    sm.on("message", (m) => { if (m.group === g) got.sm.push(m); });
    await wj.client.joinGroup(g);
    await wr.client.joinGroup(g);
    await sj.invoke("JoinGroup", g);
    await sm.invoke("JoinGroup", g);

    // Presence is cluster-wide: both nodes list the four members with their protocols.
    const channel = g.slice("app:".length);
    for (const node of [a, b]) {
      await waitFor(async () => (await members(node, channel)).count === 4, `${node.origin} lists 4 members`, 5_000);
      const listed = await members(node, channel);
      assert.deepEqual(
        Object.fromEntries(listed.members.map((m) => [m.connectionId, [m.userId, m.protocol]])),
        {
          [wj.connectionId]: ["wps-a", "webpubsub.json"],
          [wr.connectionId]: ["wps-b", "webpubsub.json.reliable"],
          [sj.connectionId]: ["sr-b", "signalr.json"],
          [sm.connectionId]: ["sr-a", "signalr.messagepack"],
        },
      );
    }

    const N = 20;
    const senders = {
      "wps-a": (n) => wj.client.sendToGroup(g, { from: "wps-a", n }, "json"),
      "wps-b": (n) => wr.client.sendToGroup(g, { from: "wps-b", n }, "json"),
      "sr-b": (n) => sj.invoke("SendToGroup", g, { from: "sr-b", n }),
      "sr-a": (n) => sm.invoke("SendToGroup", g, { from: "sr-a", n }),
    };
    // The senders run at once; each one's messages go in order.
    await Promise.all(Object.values(senders).map(async (send) => { for (let n = 0; n < N; n++) await send(n); }));
    const total = N * Object.keys(senders).length;
    const wpsOf = (c) => c.messages.filter((m) => m.group === g).map((m) => m.data);
    const received = () => ({ wj: wpsOf(wj), wr: wpsOf(wr), sj: got.sj.map((m) => m.data), sm: got.sm.map((m) => m.data) });
    await waitFor(() => Object.values(received()).every((list) => list.length >= total),
      `${total} messages at each of the four members`, 15_000,
      () => JSON.stringify(Object.fromEntries(Object.entries(received()).map(([k, v]) => [k, {
        count: v.length,
        missing: Object.keys(senders).flatMap((from) => [...Array(N).keys()]
          .filter((n) => !v.some((d) => d.from === from && d.n === n)).map((n) => `${from}#${n}`)),
      }]))));
    await sleep(200);
    for (const [label, list] of Object.entries(received())) {
      assert.equal(list.length, total, `${label}: each message once`);
      for (const from of Object.keys(senders)) {
        assert.deepEqual(list.filter((d) => d.from === from).map((d) => d.n), [...Array(N).keys()],
          `${label}: ${from}'s messages in order, once each`);
      }
    }
  });

  test("the server SDK on one node acts on users and connections of the other", async () => {
    const g = group("sdk");
    // Closed by the server below: no reconnect (a client stopped while it waits to reconnect
    // would keep the test process alive).
    const far = await wps(a, "json", "far-user", { autoReconnect: false });
    const near = await wps(b, "json", "near-user");
    // Asked on node B: the user's connection lives on node A.
    assert.equal(await b.service.userExists("far-user"), true);
    await b.service.group(g).addUser("far-user");
    await b.service.group(g).addConnection(near.connectionId);
    assert.equal(await a.service.groupExists(g), true);
    await b.service.group(g).sendToAll({ hello: "both" });
    for (const c of [far, near]) {
      await waitFor(() => c.messages.some((m) => m.group === g && m.data?.hello === "both"), `${c.userId} got the group message`, 5_000);
    }
    // A message to the user, and the close of a connection, across nodes.
    await b.service.sendToUser("far-user", { direct: true });
    await waitFor(() => far.serverMessages.some((m) => m.data?.direct === true), "the user message on node A", 5_000);
    assert.equal(await b.service.connectionExists(far.connectionId), true);
    await b.service.closeConnection(far.connectionId, { reason: "bye" });
    await waitFor(() => far.disconnected.length > 0, "node A's connection closed from node B", 5_000);
  });
});
