// The Azure Web PubSub server SDK, @azure/web-pubsub 1.2.0, unchanged against rthub: a
// `WebPubSubServiceClient` from a connection string `Endpoint=<origin>;AccessKey=<key>;Version=1.0;`
// (the access key defaults to the server API key) sends, manages groups, closes and checks
// existence; SignalR clients (@microsoft/signalr) in the same group space and Web PubSub
// clients (@azure/web-pubsub-client) with its access tokens observe it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { WebPubSubServiceClient, odata } from "@azure/web-pubsub";
import { WebPubSubClient, WebPubSubJsonProtocol } from "@azure/web-pubsub-client";
import {
  startServer, connect, collect, waitFor, waitForMessages, sleep, SERVER_KEY, signalR,
} from "./helpers/server.mjs";

const SECRET = "wps-sdk-interop-secret-0123456789abcdef";
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const sign = (claims, key) => {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${unsigned}.${createHmac("sha256", key).update(unsigned).digest("base64url")}`;
};
const userToken = (sub) => sign({ sub, exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);
const decode = (jwt) => JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString());

let server;
let service;
const open = [];
before(async () => {
  server = await startServer(["--jwt-secret", SECRET]);
  // An http endpoint needs the SDK's explicit opt-in, as against the official emulator.
  service = new WebPubSubServiceClient(
    `Endpoint=${server.origin};AccessKey=${SERVER_KEY};Version=1.0;`, "app",
    { allowInsecureConnection: true });
});
after(async () => {
  await Promise.all(open.map((c) => Promise.resolve(c.stop()).catch(() => {})));
  if (server) await server.stop();
});
const client = async () => {
  const c = await connect(server);
  open.push(c);
  return c;
};
// A SignalR connection as `user` (a JWT the server's --jwt-secret signed).
const userClient = async (user) => {
  const c = await connect(server, {
    configure: (builder) => builder.withUrl(server.hubUrl, {
      transport: signalR.HttpTransportType.WebSockets, accessTokenFactory: () => userToken(user),
    }),
  });
  open.push(c);
  return c;
};

// After something that must not reach `connection`, a marker sent to it is the next message
// it gets (one connection's messages arrive in order).
async function nothingBeforeMarker(connection, received) {
  const before = received.length;
  await service.sendToConnection(connection.connectionId, "marker", { contentType: "text/plain" });
  await waitFor(() => received.length > before, "the marker");
  assert.deepEqual(received.slice(before).map((m) => m.data), ["marker"]);
}

// Polls the async `check` until it holds, for at most 10 s.
async function eventually(check, what) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const fromServer = (data, group = null) => ({ group, data, fromUserId: null, fromConnectionId: null });

test("sendToAll in JSON, text and binary reaches SignalR clients as a server message", async () => {
  const a = await client(), b = await client();
  const gotA = collect(a), gotB = collect(b);
  await service.sendToAll({ hello: "world", n: [1, 2] });
  await service.sendToAll("plain text", { contentType: "text/plain" });
  await service.sendToAll(new Uint8Array([1, 2, 3]));
  await waitForMessages(gotA, 3);
  await waitForMessages(gotB, 3);
  const expected = [fromServer({ hello: "world", n: [1, 2] }), fromServer("plain text"), fromServer("AQID")];
  assert.deepEqual(gotA, expected);
  assert.deepEqual(gotB, expected);

  await service.sendToAll("not for b", { contentType: "text/plain", excludedConnections: [b.connectionId] });
  await waitForMessages(gotA, 4);
  assert.equal(gotA[3].data, "not for b");
  await nothingBeforeMarker(b, gotB);
});

test("group(g): addConnection, sendToAll, removeConnection, listConnections, groupExists", async () => {
  const member = await client(), outsider = await client();
  const gotMember = collect(member), gotOutsider = collect(outsider);
  const room = service.group("app:sdk-room");
  assert.equal(await service.groupExists("app:sdk-room"), false);
  await room.addConnection(member.connectionId);
  assert.equal(await service.groupExists("app:sdk-room"), true);
  await room.sendToAll({ to: "room" });
  await waitForMessages(gotMember, 1);
  assert.deepEqual(gotMember[0], fromServer({ to: "room" }, "app:sdk-room"));
  await nothingBeforeMarker(outsider, gotOutsider);

  // A SignalR member's own SendToGroup and the SDK's send reach the same group.
  await member.invoke("SendToGroup", "app:sdk-room", "from signalr");
  await waitForMessages(gotMember, 2);
  assert.equal(gotMember[1].fromConnectionId, member.connectionId);

  await room.addConnection(outsider.connectionId);
  const listed = [];
  for await (const m of await room.listConnections({ maxPageSize: 1 })) listed.push(m.connectionId);
  assert.deepEqual(listed.sort(), [member.connectionId, outsider.connectionId].sort(), "two pages of one");

  await room.removeConnection(member.connectionId);
  await room.sendToAll("after remove", { contentType: "text/plain" });
  await waitFor(() => gotOutsider.some((m) => m.data === "after remove"), "the outsider, now a member");
  await nothingBeforeMarker(member, gotMember);

  await assert.rejects(room.addConnection("no-such-connection"), (e) => e.statusCode === 404);
  await assert.rejects(service.group("not-prefixed").sendToAll("x", { contentType: "text/plain" }),
    (e) => e.statusCode === 400 && /app:/.test(e.message));
});

test("sendToUser and group(g).addUser/removeUser reach every connection of the user", async () => {
  const first = await userClient("sdk-alice"), second = await userClient("sdk-alice");
  const other = await client();
  const got1 = collect(first), got2 = collect(second), gotOther = collect(other);
  assert.equal(await service.userExists("sdk-alice"), true);
  assert.equal(await service.userExists("sdk-nobody"), false);
  await service.sendToUser("sdk-alice", { for: "alice" });
  await waitForMessages(got1, 1);
  await waitForMessages(got2, 1);
  assert.deepEqual(got1[0], fromServer({ for: "alice" }));
  await nothingBeforeMarker(other, gotOther);

  const group = service.group("app:alices");
  await group.addUser("sdk-alice");
  await group.sendToAll("to alices", { contentType: "text/plain" });
  await waitForMessages(got1, 2);
  await waitForMessages(got2, 2);
  assert.equal(got1[1].group, "app:alices");
  await group.removeUser("sdk-alice");
  assert.equal(await service.groupExists("app:alices"), false);
  await group.addUser("sdk-alice");
  await service.removeUserFromAllGroups("sdk-alice");
  assert.equal(await service.groupExists("app:alices"), false);
});

test("sendToConnection and connectionExists", async () => {
  const c = await client();
  const got = collect(c);
  assert.equal(await service.connectionExists(c.connectionId), true);
  assert.equal(await service.connectionExists("no-such-connection"), false);
  await service.sendToConnection(c.connectionId, { just: "you" });
  await waitForMessages(got, 1);
  assert.deepEqual(got[0], fromServer({ just: "you" }));
  await assert.rejects(service.sendToConnection("no-such-connection", "x", { contentType: "text/plain" }),
    (e) => e.statusCode === 404);
});

test("closeConnection ends a SignalR client with the reason", async () => {
  const c = await client();
  const id = c.connectionId; // the client forgets it once closed
  const closed = new Promise((resolve) => c.onclose(resolve));
  await service.closeConnection(id, { reason: "maintenance" });
  const error = await closed;
  assert.match(String(error), /maintenance/);
  // The client hears the Close before the server has let the connection go.
  await eventually(async () => !(await service.connectionExists(id)), "the connection gone");
});

test("closeUserConnections and group(g).closeAllConnections", async () => {
  const user = await userClient("sdk-bob");
  const userClosed = new Promise((resolve) => user.onclose(resolve));
  await service.closeUserConnections("sdk-bob");
  await userClosed;
  const member = await client();
  await service.group("app:closing").addConnection(member.connectionId);
  const memberClosed = new Promise((resolve) => member.onclose(resolve));
  await service.group("app:closing").closeAllConnections({ reason: "room closed" });
  assert.match(String(await memberClosed), /room closed/);
});

test("getClientAccessToken signs a client token for /client/hubs/app with the access key", async () => {
  const { token, baseUrl, url } = await service.getClientAccessToken({
    userId: "sdk-carol", roles: ["webpubsub.joinLeaveGroup"], groups: ["app:auto"], expirationTimeInMinutes: 5,
  });
  const origin = new URL(server.origin);
  assert.equal(baseUrl, `ws://${origin.host}/client/hubs/app`);
  assert.equal(url, `${baseUrl}?access_token=${token}`);
  const claims = decode(token);
  assert.equal(claims.aud, `${server.origin}/client/hubs/app`);
  assert.equal(claims.sub, "sdk-carol");
  assert.deepEqual(claims["webpubsub.group"], ["app:auto"]);
  assert.equal(claims.exp - claims.iat, 300);
  // The same key signs it as signs the REST calls rthub accepts.
  const [head, body, signature] = token.split(".");
  assert.equal(createHmac("sha256", SERVER_KEY).update(`${head}.${body}`).digest("base64url"), signature);
});

test("filters from the SDK's odata helper select by user and group; addConnectionsToGroups", async () => {
  const dana = await userClient("o'dana"), other = await userClient("sdk-eve");
  const gotDana = collect(dana), gotOther = collect(other);
  await service.sendToAll({ only: "dana" }, { filter: odata`userId eq ${"o'dana"}` });
  await waitForMessages(gotDana, 1);
  assert.deepEqual(gotDana[0], fromServer({ only: "dana" }));
  await nothingBeforeMarker(other, gotOther);

  await service.addConnectionsToGroups(["app:filtered"], odata`userId eq ${"sdk-eve"}`);
  await service.sendToAll("in the group", { contentType: "text/plain", filter: "'app:filtered' in groups" });
  await waitFor(() => gotOther.some((m) => m.data === "in the group"), "the filtered group's member");
  await nothingBeforeMarker(dana, gotDana);
  await service.removeConnectionsFromGroups(["app:filtered"], "userId ne null");
  assert.equal(await service.groupExists("app:filtered"), false);
});

// A started Web PubSub client with a token from getClientAccessToken(options): its
// connection id, and the server and group messages it gets.
async function webPubSubClient(options, clientOptions = {}) {
  const { url } = await service.getClientAccessToken(options);
  const client = new WebPubSubClient(url, clientOptions);
  const received = { server: [], group: [], connectionId: undefined, disconnected: [] };
  // `connected` may be emitted after start() resolves.
  const connected = new Promise((resolve) => client.on("connected", (e) => {
    received.connectionId = e.connectionId;
    resolve();
  }));
  client.on("server-message", (e) => { received.server.push(e.message); });
  client.on("group-message", (e) => { received.group.push(e.message); });
  client.on("disconnected", (e) => { received.disconnected.push(e.message); });
  await client.start();
  open.push(client);
  await connected;
  return { client, received };
}

test("a Web PubSub client connects with getClientAccessToken's URL and gets every kind of send", async () => {
  const { received } = await webPubSubClient({ userId: "sdk-wps", groups: ["app:wps-auto"] });
  assert.match(received.connectionId, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(await service.connectionExists(received.connectionId), true);
  assert.equal(await service.userExists("sdk-wps"), true);

  await service.sendToAll({ to: "all" });
  await service.sendToUser("sdk-wps", "to the user", { contentType: "text/plain" });
  await service.sendToConnection(received.connectionId, new Uint8Array([7, 8]));
  await waitFor(() => received.server.length >= 3, "three server messages");
  assert.deepEqual(received.server.slice(0, 2).map((m) => [m.dataType, m.data]),
    [["json", { to: "all" }], ["text", "to the user"]]);
  assert.equal(received.server[2].dataType, "binary");
  assert.deepEqual([...new Uint8Array(received.server[2].data)], [7, 8]);

  // The token's group was joined on connect; the SDK adds it to another and sends to both.
  await service.group("app:wps-auto").sendToAll({ auto: true });
  await service.group("app:wps-added").addConnection(received.connectionId);
  await service.group("app:wps-added").sendToAll("added", { contentType: "text/plain" });
  await waitFor(() => received.group.length >= 2, "two group messages");
  assert.deepEqual(received.group.map((m) => [m.group, m.data]),
    [["app:wps-auto", { auto: true }], ["app:wps-added", "added"]]);
});

// Over the reliable protocol the client tries to recover after any close and reports the
// refused recovery instead; the plain JSON protocol shows the server's own last message.
test("closeConnection ends a Web PubSub client with system/disconnected and the reason", async () => {
  const { client, received } = await webPubSubClient({ userId: "sdk-wps-close" },
    { protocol: WebPubSubJsonProtocol(), autoReconnect: false });
  const stopped = new Promise((resolve) => client.on("stopped", resolve));
  await service.closeConnection(received.connectionId, { reason: "goodbye" });
  await stopped;
  assert.ok(received.disconnected.some((m) => m?.message === "goodbye"),
    JSON.stringify(received.disconnected));
});

test("a wrong access key, another hub and unsupported filters are refused clearly", async () => {
  const wrong = new WebPubSubServiceClient(
    `Endpoint=${server.origin};AccessKey=not-the-access-key-0123;Version=1.0;`, "app",
    { allowInsecureConnection: true });
  await assert.rejects(wrong.sendToAll("x", { contentType: "text/plain" }), (e) => e.statusCode === 401);
  const otherHub = new WebPubSubServiceClient(
    `Endpoint=${server.origin};AccessKey=${SERVER_KEY};Version=1.0;`, "chat",
    { allowInsecureConnection: true });
  await assert.rejects(otherHub.sendToAll("x", { contentType: "text/plain" }),
    (e) => e.statusCode === 404 && /hub/.test(e.message));
  await assert.rejects(service.sendToAll("x", { contentType: "text/plain", filter: "length(userId) gt 3" }),
    (e) => e.statusCode === 400 && /filter is not supported beyond/.test(e.message));
});
