// A relayed object arrives with the sender's key order, as ASP.NET Core relays it: JSON and
// MessagePack members, sent from either protocol and from REST.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, collect, waitFor, post, signalR, SERVER_KEY } from "./helpers/server.mjs";

const { WebSockets } = signalR.HttpTransportType;
let server;
const open = [];
before(async () => { server = await startServer(); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };

// Keys deliberately out of alphabetical order, at every depth.
const data = { text: "hi", n: 3, list: [{ zeta: 1, alpha: 2 }], nested: { z: true, a: null, m: "m" } };
const keyPaths = (value, prefix = "") =>
  value && typeof value === "object" && !Array.isArray(value)
    ? Object.keys(value).flatMap((k) => [prefix + k, ...keyPaths(value[k], `${prefix}${k}.`)])
    : Array.isArray(value) ? value.flatMap((v, i) => keyPaths(v, `${prefix}${i}.`)) : [];

test("keys keep the sender's order across JSON and MessagePack", async () => {
  const group = "app:key-order";
  const json = await client({ transport: WebSockets });
  const msgpack = await client({ transport: WebSockets, protocol: "messagepack" });
  const gotJson = collect(json), gotMsgpack = collect(msgpack);
  await json.invoke("JoinGroup", group);
  await msgpack.invoke("JoinGroup", group);
  await json.invoke("SendToGroup", group, data);
  await msgpack.invoke("SendToGroup", group, data);
  const [status] = await post(server, "/api/_rt/send", { channel: "key-order", body: data }, { "x-apikey": SERVER_KEY });
  assert.equal(status, 200);
  await waitFor(() => gotJson.length === 3 && gotMsgpack.length === 3, "three messages each");
  const expected = keyPaths(data);
  for (const message of [...gotJson, ...gotMsgpack]) {
    assert.deepEqual(keyPaths(message.data), expected);
    assert.deepEqual(Object.keys(message), ["group", "data", "fromUserId", "fromConnectionId"]);
  }
});
