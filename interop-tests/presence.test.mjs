// Presence with the official client: GroupMembers over JSON and MessagePack, and the REST list
// for the server identity, which names each member's protocol.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, SERVER_KEY } from "./helpers/server.mjs";

let server;
const open = [];
before(async () => { server = await startServer(); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };

test("GroupMembers lists a channel's members; the REST list names their protocols", async () => {
  const json = await client({ protocol: "json" });
  const messagepack = await client({ protocol: "messagepack" });
  await json.invoke("JoinGroup", "app:lobby");
  await messagepack.invoke("JoinGroup", "app:lobby");

  // Anonymous connections are separate principals: each sees only its own id.
  for (const [connection, own] of [[json, 0], [messagepack, 1]]) {
    const listed = await connection.invoke("GroupMembers", "app:lobby");
    assert.equal(listed.count, 2);
    assert.deepEqual(listed.members.map((m) => m.connectionId),
      own === 0 ? [json.connectionId, null] : [null, messagepack.connectionId]);
    assert.deepEqual(listed.members.map((m) => m.readOnly), [false, false]);
  }
  await assert.rejects(json.invoke("GroupMembers", "app:lobby:vip"), /private/);

  const response = await fetch(`${server.origin}/api/_rt/channels/lobby/members`, { headers: { "x-apikey": SERVER_KEY } });
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.deepEqual(body.members.map((m) => [m.connectionId, m.protocol]), [
    [json.connectionId, "signalr.json"],
    [messagepack.connectionId, "signalr.messagepack"],
  ]);

  await messagepack.invoke("LeaveGroup", "app:lobby");
  assert.equal((await json.invoke("GroupMembers", "app:lobby")).count, 1);
});
