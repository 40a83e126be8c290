// @microsoft/signalr over WebSockets + JSON: channels, errors, limits, stop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  startServer, connect, collect, waitFor, waitForMessages, sleep, post, signalR, SERVER_KEY,
} from "./helpers/server.mjs";

const { Connected, Disconnected } = signalR.HubConnectionState;

let server;
const open = [];
before(async () => { server = await startServer(); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  if (server) await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };

// A negative check ("nothing more arrives") needs a point after which a stray message would
// already have arrived: `sender` sends a marker to `group`, which `member` is in, after the
// message under test; per-connection delivery is in order, so once the marker is there, so
// would be the stray message. A short grace period covers a server that reorders.
async function barrier(sender, member, group) {
  const markers = collect(member, "message");
  await member.invoke("JoinGroup", group);
  await sender.invoke("SendToGroup", group, "marker");
  await waitFor(() => markers.some((m) => m.group === group), `the marker on ${group}`);
  await sleep(50);
}

test("connects over WebSockets with a 22-character URL-safe connection id", async () => {
  const a = await client(), b = await client();
  assert.equal(a.state, Connected);
  assert.equal(a.connection.transport.constructor.name, "WebSocketTransport");
  assert.match(a.connectionId, /^[A-Za-z0-9_-]{22}$/);
  assert.match(b.connectionId, /^[A-Za-z0-9_-]{22}$/);
  assert.notEqual(a.connectionId, b.connectionId);
});

test("default transport negotiation picks WebSockets", async () => {
  const [, negotiated] = await post(server, "/api/_rt/signalr/negotiate?negotiateVersion=1", undefined);
  assert.equal(negotiated.availableTransports[0].transport, "WebSockets");
  const c = await client({ transport: undefined });
  assert.equal(c.state, Connected);
  assert.equal(c.connection.transport.constructor.name, "WebSocketTransport");
  const got = collect(c);
  await c.invoke("JoinGroup", "app:default-transport");
  await c.invoke("SendToGroup", "app:default-transport", "over ws");
  await waitForMessages(got, 1, "own message");
  assert.equal(got[0].data, "over ws");
});

test("join, send and receive with the exact payload shape", async () => {
  const a = await client(), b = await client();
  const gotA = collect(a), gotB = collect(b);
  await a.invoke("JoinGroup", "app:shape");
  await b.invoke("JoinGroup", "app:shape");
  const data = { text: "hi ✓", n: [1, 2.5, -3], nested: { ok: true, none: null } };
  await a.invoke("SendToGroup", "app:shape", data);
  await waitForMessages(gotB, 1, "messages at the receiver");
  await waitForMessages(gotA, 1, "messages at the sender (a member)");
  const expected = { group: "app:shape", data, fromUserId: null, fromConnectionId: a.connectionId };
  assert.deepEqual(gotB[0], expected);
  assert.deepEqual(gotA[0], expected, "a sender that is a member receives its own message");
});

test("JoinGroup, LeaveGroup and SendToGroup complete with a null result", async () => {
  const a = await client();
  assert.equal(await a.invoke("JoinGroup", "app:results"), null);
  assert.equal(await a.invoke("SendToGroup", "app:results", 1), null);
  assert.equal(await a.invoke("LeaveGroup", "app:results"), null);
});

test("sending without joining reaches the members of a regular channel", async () => {
  const outsider = await client(), member = await client();
  const gotOutsider = collect(outsider), gotMember = collect(member);
  await member.invoke("JoinGroup", "app:open");
  await outsider.invoke("SendToGroup", "app:open", "from outside");
  await waitForMessages(gotMember, 1, "messages at the member");
  assert.deepEqual(gotMember[0], {
    group: "app:open", data: "from outside", fromUserId: null, fromConnectionId: outsider.connectionId,
  });
  await barrier(member, outsider, "app:open-marker");
  assert.deepEqual(gotOutsider.filter((m) => m.group === "app:open"), [], "a non-member sender gets no copy");
});

test("after LeaveGroup no more messages arrive for that member; another member still gets them", async () => {
  const a = await client(), b = await client(), sender = await client();
  const gotA = collect(a), gotB = collect(b);
  await a.invoke("JoinGroup", "app:leave");
  await b.invoke("JoinGroup", "app:leave");
  await sender.invoke("SendToGroup", "app:leave", "before");
  await waitForMessages(gotA, 1, "messages at a before leaving");
  await waitForMessages(gotB, 1, "messages at b");
  await a.invoke("LeaveGroup", "app:leave");
  await sender.invoke("SendToGroup", "app:leave", "after");
  await waitForMessages(gotB, 2, "messages at b");
  assert.deepEqual(gotB.map((m) => m.data), ["before", "after"]);
  await barrier(sender, a, "app:leave-marker");
  assert.deepEqual(gotA.filter((m) => m.group === "app:leave").map((m) => m.data), ["before"]);
});

test("method names are case-insensitive", async () => {
  const a = await client(), b = await client();
  const got = collect(b);
  await b.invoke("JOINGROUP", "app:case");
  await a.invoke("sendtogroup", "app:case", "x");
  await waitForMessages(got, 1, "messages");
  assert.deepEqual(got[0], { group: "app:case", data: "x", fromUserId: null, fromConnectionId: a.connectionId });
  assert.equal(await b.invoke("leaveGROUP", "app:case"), null);
  await a.invoke("SendToGroup", "app:case", "y");
  await barrier(a, b, "app:case-marker");
  assert.deepEqual(got.filter((m) => m.group === "app:case").map((m) => m.data), ["x"], "leaveGROUP left");
});

test("unknown method rejects with .NET's text and the connection stays up", async () => {
  const a = await client();
  const got = collect(a);
  await assert.rejects(a.invoke("Nope", 1), (e) => {
    assert.match(e.message, /Unknown hub method 'Nope'/);
    return true;
  });
  assert.equal(a.state, Connected);
  await a.invoke("JoinGroup", "app:after-error");
  await a.invoke("SendToGroup", "app:after-error", "still works");
  await waitForMessages(got, 1, "messages after the error");
  assert.equal(got[0].data, "still works");
});

test("wrong argument count rejects with .NET's text", async () => {
  const a = await client();
  await assert.rejects(a.invoke("JoinGroup"), /Failed to invoke 'JoinGroup' due to an error on the server/);
  assert.equal(a.state, Connected);
});

test("private and invalid channels are refused, the connection stays up", async () => {
  const a = await client(), b = await client();
  const gotA = collect(a), gotB = collect(b);
  await assert.rejects(a.invoke("JoinGroup", "app:room:1"), /private/);
  await assert.rejects(a.invoke("SendToGroup", "app:room:1", "x"), /private/);
  await assert.rejects(a.invoke("JoinGroup", "bad name!"), /HubException/);
  await assert.rejects(a.invoke("SendToGroup", "bad name!", "x"), /HubException/);
  await assert.rejects(a.invoke("JoinGroup", "room"), /app:/, "a name without the app: prefix");
  await assert.rejects(a.invoke("JoinGroup", "app:bad name!"), /HubException/);
  await assert.rejects(a.invoke("JoinGroup", `app:${"x".repeat(129)}`), /HubException/, "129 characters");
  await assert.rejects(a.invoke("JoinGroup", "app:"), /HubException/, "an empty channel name");
  assert.equal(a.state, Connected);
  // The longest valid name, with every allowed punctuation character, is accepted.
  const longest = `app:${"a-_.".repeat(32)}`;
  await a.invoke("JoinGroup", longest);
  await b.invoke("SendToGroup", longest, "ok");
  await waitForMessages(gotA, 1, "messages after the refusals");
  assert.deepEqual(gotA[0], { group: longest, data: "ok", fromUserId: null, fromConnectionId: b.connectionId });
  assert.deepEqual(gotB, []);
});

test("a server-joined read-write member may send to a private channel; read-only may not", async () => {
  const a = await client(), b = await client();
  const got = collect(b);
  const join = (c, readOnly) => post(server, "/api/_rt/join",
    { connectionId: c.connectionId, channel: "room:7", readOnly }, { "x-apikey": SERVER_KEY });
  assert.equal((await join(b, true))[0], 200);
  assert.equal((await join(a, false))[0], 200);
  await a.invoke("SendToGroup", "app:room:7", "from a");
  await waitForMessages(got, 1, "private messages");
  assert.deepEqual(got[0], { group: "app:room:7", data: "from a", fromUserId: null, fromConnectionId: a.connectionId });
  await assert.rejects(b.invoke("SendToGroup", "app:room:7", "from b"), /read-only/);
  const [status] = await post(server, "/api/_rt/join", { connectionId: a.connectionId, channel: "room:8" });
  assert.equal(status, 400);
});

test("REST send reaches hub members with fromConnectionId null", async () => {
  const a = await client();
  const got = collect(a);
  await a.invoke("JoinGroup", "app:rest");
  const [status] = await post(server, "/api/_rt/send", { channel: "rest", body: { v: 1 } });
  assert.equal(status, 200);
  await waitForMessages(got, 1, "REST messages");
  assert.deepEqual(got[0], { group: "app:rest", data: { v: 1 }, fromUserId: null, fromConnectionId: null });
});

test("50 connections in one group all receive exactly once", async () => {
  const members = await Promise.all(Array.from({ length: 50 }, () => client()));
  const got = members.map((m) => collect(m));
  await Promise.all(members.map((m) => m.invoke("JoinGroup", "app:fifty")));
  await members[0].invoke("SendToGroup", "app:fifty", "all");
  await waitFor(() => got.every((g) => g.length >= 1), "a delivery at each of the 50 members", 10_000,
    () => `${got.filter((g) => g.length >= 1).length} of 50 got it`);
  // A second message is queued behind any duplicate of the first: once it is everywhere,
  // each member must hold exactly [all, done].
  await members[0].invoke("SendToGroup", "app:fifty", "done");
  await waitFor(() => got.every((g) => g.length >= 2), "the second message at each member", 10_000,
    () => `${got.filter((g) => g.length >= 2).length} of 50 got it`);
  await sleep(50);
  for (const [i, g] of got.entries()) {
    assert.deepEqual(g.map((m) => m.data), ["all", "done"], `member ${i}`);
    assert.equal(g[0].fromConnectionId, members[0].connectionId);
  }
});

test("300 messages from one client arrive in order at another member", async () => {
  const a = await client(), b = await client();
  const got = collect(b);
  await b.invoke("JoinGroup", "app:order");
  const sends = [];
  for (let i = 0; i < 300; i++) sends.push(a.send("SendToGroup", "app:order", i));
  await Promise.all(sends);
  await waitForMessages(got, 300, "ordered messages");
  await a.invoke("SendToGroup", "app:order", "end");
  await waitForMessages(got, 301, "ordered messages and the end marker");
  assert.deepEqual(got.map((m) => m.data), [...Array.from({ length: 300 }, (_, i) => i), "end"]);
  assert.ok(got.every((m) => m.fromConnectionId === a.connectionId && m.group === "app:order"));
});

test("a message of 32 KiB minus framing is accepted", async () => {
  const a = await client(), b = await client();
  const got = collect(b);
  await b.invoke("JoinGroup", "app:near-limit");
  // {"type":1,"target":"SendToGroup","arguments":["app:near-limit","xxx…"]} + 0x1E, no invocationId.
  const overhead = JSON.stringify({ type: 1, target: "SendToGroup", arguments: ["app:near-limit", ""] }).length + 1;
  const data = "y".repeat(32_768 - overhead - 100);
  await a.send("SendToGroup", "app:near-limit", data);
  await waitForMessages(got, 1, "messages near the limit");
  assert.equal(got[0].data, data);
  assert.equal(a.state, Connected);
});

test("an oversize message closes only its sender, with an error", async () => {
  const big = await client(), other = await client();
  const gotOther = collect(other);
  await other.invoke("JoinGroup", "app:big");
  await big.invoke("JoinGroup", "app:big");
  const closed = new Promise((resolve) => big.onclose(resolve));
  big.send("SendToGroup", "app:big", "x".repeat(40_000)).catch(() => {});
  const error = await closed;
  assert.ok(error instanceof Error, `onclose got an Error (got ${error})`);
  assert.match(error.message, /maximum message size/);
  assert.equal(big.state, Disconnected);
  assert.equal(other.state, Connected);
  await other.invoke("SendToGroup", "app:big", "still here");
  await waitForMessages(gotOther, 1, "the other member's own message");
  assert.deepEqual(gotOther.map((m) => m.data), ["still here"], "the oversize message was not delivered");
  // The server still accepts new connections, and the closed one is no longer a member.
  const late = await client();
  const gotLate = collect(late);
  await late.invoke("JoinGroup", "app:big");
  await late.invoke("SendToGroup", "app:big", "late");
  await waitForMessages(gotOther, 2, "messages from a new connection");
  await waitForMessages(gotLate, 1, "own message at the new connection");
  assert.equal(gotOther[1].data, "late");
});

test("stop() closes cleanly", async () => {
  const a = await connect(server);
  const id = a.connectionId;
  const closes = [];
  const closed = new Promise((resolve) => a.onclose((e) => { closes.push(e); resolve(e); }));
  await a.stop();
  assert.equal(await closed, undefined, "onclose without an error");
  assert.equal(a.state, Disconnected);
  assert.equal(a.connectionId, null);
  await sleep(50);
  assert.equal(closes.length, 1, "onclose called once");
  // The server forgot the connection: a REST join for its id is refused.
  const [status] = await post(server, "/api/_rt/join", { connectionId: id, channel: "gone" }, { "x-apikey": SERVER_KEY });
  assert.equal(status, 404);
});
