// @azure/web-pubsub-client (1.1.0 and 1.0.4) against rthub's Web PubSub endpoint, with each
// JSON subprotocol: connect, groups, payload types, noEcho, roles of SDK tokens, rthub's
// channel rules as ack errors, duplicate ack ids, events and invocations without an event
// handler, groups joined from the token, keep-alive, a server-side close and shutdown.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import {
  MATRIX, HUB, WPS_KEY, startWpsServer, accessUrl, sdkUrl, startClient, stopClients,
  expectAckError, waitForMessage, waitFor, sleep, group, withTimeout, WebSocket,
} from "./helpers/webpubsub.mjs";
import { createHmac } from "node:crypto";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { post } from "./helpers/server.mjs";

let server;
before(async () => { server = await startWpsServer(); });
after(async () => {
  await stopClients();
  await server?.stop();
});

const serverKey = { "x-apikey": WPS_KEY };
const NO_RETRY = { messageRetryOptions: { maxRetries: 0 } };
const bytes = (...values) => new Uint8Array(values).buffer;

test("GET /api/_rt/ws: a text URL by default, { url, baseUrl, token } for application/json", async () => {
  const text = await accessUrl(server);
  const prefix = `ws://127.0.0.1:${server.port}/api/_rt/ws/client?access_token=`;
  assert.ok(text.startsWith(prefix), `the text URL ${text} starts with ${prefix}`);
  const json = await accessUrl(server, { json: true });
  assert.deepEqual(Object.keys(json).sort(), ["baseUrl", "token", "url"]);
  assert.equal(json.baseUrl, `ws://127.0.0.1:${server.port}/api/_rt/ws/client`);
  assert.equal(json.url, `${json.baseUrl}?access_token=${json.token}`);
  const refused = await fetch(`${server.origin}/api/_rt/ws`, { headers: { "x-apikey": "not-a-key-of-this-server" } });
  assert.equal(refused.status, 401, "an unknown API key is refused");
});

/** Opens a raw WebSocket; resolves to { protocol, first frame } or { status } of a refused upgrade. */
function handshake(url, protocols = ["json.webpubsub.azure.v1"]) {
  return withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(url, protocols);
    ws.on("unexpected-response", (_req, res) => { res.resume(); resolve({ status: res.statusCode }); });
    ws.on("error", (e) => resolve({ error: e.message }));
    ws.on("message", (data) => { resolve({ protocol: ws.protocol, first: JSON.parse(data.toString()) }); ws.close(); });
  }), `the handshake with ${url}`);
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const sign = (claims, key) => {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}`;
  return `${unsigned}.${createHmac("sha256", key).update(unsigned).digest("base64url")}`;
};

test("raw handshake: the subprotocol is echoed, system/connected comes first; bad tokens are refused", async () => {
  const url = await accessUrl(server);
  for (const protocol of ["json.webpubsub.azure.v1", "json.reliable.webpubsub.azure.v1"]) {
    const { protocol: chosen, first, ...rest } = await handshake(url, [protocol]);
    assert.equal(chosen, protocol, `Sec-WebSocket-Protocol echoes ${protocol}: ${JSON.stringify(rest)}`);
    assert.equal(first.type, "system");
    assert.equal(first.event, "connected");
    assert.equal(typeof first.connectionId, "string");
    if (protocol.includes("reliable")) assert.equal(typeof first.reconnectionToken, "string", JSON.stringify(first));
    else assert.equal(first.reconnectionToken, undefined, `no reconnectionToken on json.webpubsub.azure.v1: ${JSON.stringify(first)}`);
  }
  const base = `ws://127.0.0.1:${server.port}/client/hubs/${HUB}`;
  const aud = `http://127.0.0.1:${server.port}/client/hubs/${HUB}`;
  const now = Math.floor(Date.now() / 1000);
  const refused = {
    "a garbage token": `${url.split("?")[0]}?access_token=garbage`,
    "no token": base,
    "a token signed with another key": `${base}?access_token=${sign({ aud, exp: now + 600 }, "another-key-0123456789abcdef")}`,
    "an expired token": `${base}?access_token=${sign({ aud, exp: now - 600 }, WPS_KEY)}`,
    // Only the path of aud is compared (behind a proxy the host the SDK was given is unknown).
    "a token for another hub's path": `${base}?access_token=${sign({ aud: `http://127.0.0.1:${server.port}/client/hubs/other`, exp: now + 600 }, WPS_KEY)}`,
  };
  for (const [what, bad] of Object.entries(refused)) {
    const outcome = await handshake(bad);
    assert.equal(outcome.status, 401, `${what}: the upgrade is refused with 401, got ${JSON.stringify(outcome)}`);
  }
  const good = sign({ aud, exp: now + 600, sub: "hand-made" }, WPS_KEY);
  const accepted = await handshake(`${base}?access_token=${good}`);
  assert.equal(accepted.first?.userId, "hand-made", `a hand-made token like the SDK's is accepted: ${JSON.stringify(accepted)}`);
  const otherHub = await handshake(`ws://127.0.0.1:${server.port}/client/hubs/other?access_token=${good}`);
  assert.ok([401, 404].includes(otherHub.status), `another hub is refused: ${JSON.stringify(otherHub)}`);
});

test("[webpubsub] hub and access_key: the SDK's URL names the hub, tokens signed with the key", async () => {
  const custom = await startWpsServer({ webpubsub: { hub: "chat", access_key: "wps-custom-access-key-0000000" } });
  try {
    const [entry] = MATRIX;
    const url = await sdkUrl(custom, { userId: "chatter", roles: ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"] });
    assert.equal(new URL(url).pathname, "/client/hubs/chat");
    const c = await startClient(entry, url);
    assert.equal(c.userId, "chatter");
    const g = group("chat");
    await c.client.joinGroup(g);
    await c.client.sendToGroup(g, "in chat", "text");
    await waitForMessage(c, (m) => m.group === g && m.data === "in chat", "its own message on the custom hub");
    c.client.stop();
    const token = new URL(url).searchParams.get("access_token");
    const appHub = await handshake(`ws://127.0.0.1:${custom.port}/client/hubs/app?access_token=${token}`);
    assert.ok([401, 404].includes(appHub.status), `the default hub name is not served: ${JSON.stringify(appHub)}`);
    const withServerKey = new WebPubSubServiceClient(`Endpoint=${custom.origin};AccessKey=${WPS_KEY};Version=1.0;`, "chat", { allowInsecureConnection: true });
    const wrongKey = await handshake((await withServerKey.getClientAccessToken()).url);
    assert.equal(wrongKey.status, 401, `a token signed with the server key, not the access_key: ${JSON.stringify(wrongKey)}`);
    const fromRest = await accessUrl(custom, { who: { user: "rest-chatter" } });
    const viaRest = await startClient(entry, fromRest);
    assert.equal(viaRest.userId, "rest-chatter", "GET /api/_rt/ws signs with the configured key too");
    viaRest.client.stop();
  } finally {
    await custom.stop();
  }
});

// Sends a marker from `sender` to `markerGroup` (which `member` is in) and waits for it: a
// message sent before it that was going to reach `member` has then arrived (one connection's
// sends are routed in order), so its absence means something. A short grace covers reordering.
async function barrier(sender, member, markerGroup) {
  const marker = `marker-${Math.random()}`;
  await sender.client.sendToGroup(markerGroup, marker, "text");
  await waitForMessage(member, (m) => m.group === markerGroup && m.data === marker, `the marker on ${markerGroup}`);
  await sleep(50);
}

for (const entry of MATRIX) {
  const { reliable } = entry.protocol;
  describe(entry.label, () => {
    const user = (name) => ({ who: { user: `${name}-${entry.version}-${entry.protocol.name}` } });
    const fromRt = async (name, options = {}) => startClient(entry, await accessUrl(server, user(name)), options);

    test("connects with URLs from GET /api/_rt/ws (text and JSON) and from getClientAccessToken", async () => {
      const a = await fromRt("alice");
      assert.equal(typeof a.connectionId, "string");
      assert.ok(a.connectionId.length > 0, "a non-empty connectionId");
      assert.equal(a.userId, `alice-${entry.version}-${entry.protocol.name}`, "userId is the JWT's sub");
      const { url } = await accessUrl(server, { ...user("bob"), json: true });
      const b = await startClient(entry, url);
      assert.equal(b.userId, `bob-${entry.version}-${entry.protocol.name}`);
      assert.notEqual(b.connectionId, a.connectionId);
      const sdk = await startClient(entry, await sdkUrl(server, { userId: "sdk-user", roles: ["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"] }));
      assert.equal(sdk.userId, "sdk-user", "userId is the SDK token's sub");
      assert.ok(new URL(await sdkUrl(server)).pathname === `/client/hubs/${HUB}`);
      const anonymous = await startClient(entry, await sdkUrl(server));
      assert.ok(anonymous.userId == null, `an SDK token without userId connects with no user, got ${JSON.stringify(anonymous.userId)}`);
    });

    test("joinGroup, sendToGroup with json, text and binary data, leaveGroup — all acked", async () => {
      const g = group("room");
      const a = await fromRt("sender"), b = await fromRt("receiver");
      assert.equal((await b.client.joinGroup(g)).isDuplicated, false);
      const sent = await a.client.sendToGroup(g, { text: "hi ✓", n: [1, 2.5, -3], nested: { ok: true, none: null } }, "json");
      assert.equal(sent.isDuplicated, false);
      assert.equal(typeof sent.ackId, "number");
      await a.client.sendToGroup(g, "plain text", "text");
      await a.client.sendToGroup(g, bytes(0, 1, 2, 254, 255), "binary");
      await waitFor(() => b.messages.length >= 3, "three group messages at the receiver", 10_000,
        () => JSON.stringify(b.messages));
      const [json, text, binary] = b.messages;
      for (const m of b.messages) {
        assert.equal(m.type, "message");
        assert.equal(m.from, "group");
        assert.equal(m.group, g);
        assert.equal(m.fromUserId, a.userId);
        if (reliable) assert.equal(typeof m.sequenceId, "number", `a reliable message carries sequenceId: ${JSON.stringify(m)}`);
        else assert.equal(m.sequenceId, undefined, `a json.webpubsub.azure.v1 message has no sequenceId: ${JSON.stringify(m)}`);
      }
      if (reliable) assert.deepEqual(b.messages.map((m) => m.sequenceId), [1, 2, 3], "sequence ids count from 1 per connection");
      assert.equal(json.dataType, "json");
      assert.deepEqual(json.data, { text: "hi ✓", n: [1, 2.5, -3], nested: { ok: true, none: null } });
      assert.equal(text.dataType, "text");
      assert.equal(text.data, "plain text");
      assert.equal(binary.dataType, "binary");
      assert.ok(binary.data instanceof ArrayBuffer, "binary data arrives as an ArrayBuffer");
      assert.deepEqual([...new Uint8Array(binary.data)], [0, 1, 2, 254, 255]);
      assert.equal(a.messages.length, 0, "the sender is no member and gets nothing");

      assert.equal((await b.client.leaveGroup(g)).isDuplicated, false);
      const marker = group("marker");
      await b.client.joinGroup(marker);
      await a.client.sendToGroup(g, "after leave", "text");
      await barrier(a, b, marker);
      assert.ok(!b.messages.some((m) => m.data === "after leave"), "no message after leaveGroup");
    });

    test("a member sender gets its own message; with noEcho: true only the others do; fireAndForget", async () => {
      const g = group("echo");
      const a = await fromRt("echoer"), b = await fromRt("listener");
      await a.client.joinGroup(g);
      await b.client.joinGroup(g);
      await a.client.sendToGroup(g, { echo: true }, "json");
      await waitForMessage(a, (m) => m.data?.echo === true, "its own message (noEcho false)");
      await a.client.sendToGroup(g, { quiet: 1 }, "json", { noEcho: true });
      await waitForMessage(b, (m) => m.data?.quiet === 1, "the noEcho message at the other member");
      await barrier(b, a, g);
      assert.ok(!a.messages.some((m) => m.data?.quiet === 1), `noEcho: the sender got nothing, got ${JSON.stringify(a.messages)}`);
      // fireAndForget: no ackId on the wire, and no ack owed.
      assert.deepEqual(await a.client.sendToGroup(g, { faf: 1 }, "json", { fireAndForget: true }), { isDuplicated: false });
      await waitForMessage(b, (m) => m.data?.faf === 1, "a fireAndForget message");
    });

    test("SDK token roles: joinLeaveGroup.app:a joins app:a only and cannot send", async () => {
      const a = group("a"), b = group("b");
      const limited = await startClient(entry, await sdkUrl(server, { userId: "limited", roles: [`webpubsub.joinLeaveGroup.${a}`] }), NO_RETRY);
      assert.equal((await limited.client.joinGroup(a)).isDuplicated, false);
      await expectAckError(limited.client.joinGroup(b), "Forbidden", `joinGroup ${b} with only joinLeaveGroup.${a}`);
      await expectAckError(limited.client.sendToGroup(a, { no: 1 }, "json"), "Forbidden", `sendToGroup ${a} without a sendToGroup role`);
      const noRoles = await startClient(entry, await sdkUrl(server, { userId: "none" }), NO_RETRY);
      await expectAckError(noRoles.client.joinGroup(a), "Forbidden", "joinGroup with no roles");

      const sender = await startClient(entry, await sdkUrl(server, { userId: "sender", roles: [`webpubsub.sendToGroup.${a}`] }), NO_RETRY);
      await sender.client.sendToGroup(a, { yes: 1 }, "json");
      const got = await waitForMessage(limited, (m) => m.data?.yes === 1, "a message from a sendToGroup.<group> holder");
      assert.equal(got.fromUserId, "sender");
      await expectAckError(sender.client.sendToGroup(b, { no: 2 }, "json"), "Forbidden", `sendToGroup ${b} with only sendToGroup.${a}`);
    });

    test("channel rules: private, entity and invalid names are refused; the connection stays usable", async () => {
      const c = await fromRt("rules", NO_RETRY);
      const ok = group("ok");
      await c.client.joinGroup(ok);
      const usable = async (after) => {
        const text = `still usable after ${after}`;
        await withTimeout(c.client.sendToGroup(ok, text, "text"), `a send after ${after}`);
        await waitForMessage(c, (m) => m.group === ok && m.data === text, `its own message after ${after}`);
      };
      const room = `app:room:${entry.version}-${entry.protocol.name}`;
      await expectAckError(c.client.joinGroup(room), "Forbidden", `joinGroup of the private channel ${room}`);
      await usable("a private join");
      await expectAckError(c.client.sendToGroup(room, { x: 1 }, "json"), "Forbidden", `sendToGroup to the private channel ${room}, not a member`);
      await usable("a private send");
      await expectAckError(c.client.joinGroup("app:customers"), "Forbidden", "joinGroup of the entity channel app:customers");
      await usable("an entity join");
      await expectAckError(c.client.sendToGroup("app:customers", { x: 1 }, "json"), "Forbidden", "sendToGroup to app:customers");
      await usable("an entity send");
      for (const bad of ["nope", "app:bad name", "other:room"]) {
        await expectAckError(c.client.joinGroup(bad), "BadRequest", `joinGroup of the invalid name ${JSON.stringify(bad)}`);
      }
      await expectAckError(c.client.sendToGroup("nope", "x", "text"), "BadRequest", "sendToGroup to the invalid name nope");
      await usable("invalid names");

      // The server identity may put the connection in the private channel; then it receives.
      const channel = room.slice("app:".length);
      const [joined, body] = await post(server, "/api/_rt/join", { connectionId: c.connectionId, channel }, serverKey);
      assert.equal(joined, 200, `POST /api/_rt/join of the private channel: ${JSON.stringify(body)}`);
      const [sent] = await post(server, "/api/_rt/send", { channel, body: { private: true } }, serverKey);
      assert.equal(sent, 200);
      const got = await waitForMessage(c, (m) => m.group === room, `the server's message on ${room}`);
      assert.deepEqual([got.from, got.dataType, got.data], ["group", "json", { private: true }]);
      // A read-write member may send to the private channel; a read-only one may not.
      await withTimeout(c.client.sendToGroup(room, "member speaks", "text"), `a send to ${room} as a read-write member`);
      await waitForMessage(c, (m) => m.group === room && m.data === "member speaks", `its own message on ${room}`);
      const quiet = `${room}-ro`;
      const [ro, roBody] = await post(server, "/api/_rt/join", { connectionId: c.connectionId, channel: quiet.slice("app:".length), readOnly: true }, serverKey);
      assert.equal(ro, 200, `POST /api/_rt/join readOnly: ${JSON.stringify(roBody)}`);
      await expectAckError(c.client.sendToGroup(quiet, "x", "text"), "Forbidden", `sendToGroup to ${quiet} as a read-only member`);
      await usable("a read-only send");
    });

    test("a repeated ackId is answered as a duplicate and not executed twice", async () => {
      const g = group("dup");
      const a = await fromRt("dup-sender"), b = await fromRt("dup-receiver");
      await b.client.joinGroup(g);
      const ackId = 900_000 + Math.floor(Math.random() * 1000);
      assert.deepEqual(await a.client.sendToGroup(g, { once: true }, "json", { ackId }), { ackId, isDuplicated: false });
      assert.deepEqual(await a.client.sendToGroup(g, { once: true }, "json", { ackId }), { ackId, isDuplicated: true },
        "the second send with the same ackId resolves with isDuplicated: true");
      const joinAck = ackId + 1;
      assert.deepEqual(await a.client.joinGroup(g, { ackId: joinAck }), { ackId: joinAck, isDuplicated: false });
      assert.deepEqual(await a.client.joinGroup(g, { ackId: joinAck }), { ackId: joinAck, isDuplicated: true });
      await barrier(a, b, g);
      assert.equal(b.messages.filter((m) => m.data?.once === true).length, 1, "the duplicate was not sent again");
    });

    test("sendEvent without an event handler is acked", async () => {
      const c = await fromRt("eventer", NO_RETRY);
      const acked = await withTimeout(c.client.sendEvent("hello", { x: 1 }, "json"), "the ack of sendEvent");
      assert.equal(acked.isDuplicated, false);
      assert.equal(typeof acked.ackId, "number");
      const text = await withTimeout(c.client.sendEvent("hello", "text event", "text"), "the ack of a text sendEvent");
      assert.equal(text.isDuplicated, false);
    });

    test("groups in the token are joined without joinGroup (getClientAccessToken groups, /api/_rt/ws?group=)", async () => {
      const fromSdk = group("auto-sdk"), fromRest = group("auto-rest");
      const sdkJoined = await startClient(entry, await sdkUrl(server, { userId: "auto", groups: [fromSdk] }));
      const restJoined = await startClient(entry, await accessUrl(server, { ...user("auto"), groups: [fromRest] }));
      const sender = await fromRt("auto-sender");
      await sender.client.sendToGroup(fromSdk, { to: "sdk" }, "json");
      await sender.client.sendToGroup(fromRest, { to: "rest" }, "json");
      const a = await waitForMessage(sdkJoined, (m) => m.group === fromSdk, `a message on ${fromSdk} (webpubsub.group of the SDK token)`);
      const b = await waitForMessage(restJoined, (m) => m.group === fromRest, `a message on ${fromRest} (group= of GET /api/_rt/ws)`);
      assert.deepEqual(a.data, { to: "sdk" });
      assert.deepEqual(b.data, { to: "rest" });
    });

    test("invokeEvent without an event handler succeeds with no data (docs/DECISIONS.md)", async () => {
      const c = await fromRt("invoker", NO_RETRY);
      assert.equal(typeof c.client.invokeEvent, "function", `${entry.version} has invokeEvent`);
      let outcome;
      try {
        outcome = { value: await withTimeout(c.client.invokeEvent("hello", { q: 1 }, "json"), "the invokeResponse") };
      } catch (error) {
        outcome = { error: `${error.name}: ${error.message} ${JSON.stringify(error.errorDetail)}` };
      }
      assert.equal(outcome.error, undefined, "an invokeResponse with success: true");
      assert.equal(typeof outcome.value.invocationId, "string");
      assert.equal(outcome.value.dataType, undefined, `no data: ${JSON.stringify(outcome.value)}`);
      assert.equal(outcome.value.data, undefined);
      const g = group("after-invoke");
      await c.client.joinGroup(g);
      await c.client.sendToGroup(g, "still here", "text");
      await waitForMessage(c, (m) => m.group === g, "its own message after the invocation");
    });

    test("an idle client's pings are answered: no keep-alive timeout closes it", async () => {
      // Ping every 200 ms, close after 2 s without any frame; idle for 4 s.
      const c = await fromRt("idle", { keepAliveIntervalInMs: 200, keepAliveTimeoutInMs: 2000 });
      await sleep(4000);
      assert.deepEqual(c.disconnected, [], "no disconnect while idle");
      assert.equal(c.connected.length, 1, "no reconnect while idle");
      const g = group("idle");
      await c.client.joinGroup(g);
      await c.client.sendToGroup(g, "awake", "text");
      await waitForMessage(c, (m) => m.group === g, "its own message after idling");
    });

    test("the server closing the connection (data-plane closeConnection): disconnected, then a fresh connection", async (t) => {
      const c = await fromRt("closed");
      try {
        await server.service.closeConnection(c.connectionId, { reason: "closed by the test" });
      } catch (error) {
        if (error.statusCode === 404 || error.statusCode === 405) {
          t.skip(`no data-plane closeConnection route (${error.statusCode})`);
          return;
        }
        throw new Error(`closeConnection: ${error.statusCode} ${error.message}`);
      }
      await waitFor(() => c.disconnected.length > 0, "the disconnected event", 45_000);
      const reason = c.disconnected[0].message?.message;
      if (reason !== undefined) assert.equal(reason, "closed by the test", "system/disconnected carries the reason");
      else t.diagnostic("no system/disconnected message before the close");
      await waitFor(() => c.connected.length > 1, "a fresh connected event after auto-reconnect", 45_000);
      assert.notEqual(c.connected[1].connectionId, c.connectionId, "a closed connection is not recovered: a new connectionId");
    });
  });
}

test("server shutdown: each connection gets system/disconnected, then close 1001", async () => {
  const doomed = await startWpsServer();
  const url = await accessUrl(doomed, { who: { user: "doomed" } });
  const sockets = ["json.webpubsub.azure.v1", "json.reliable.webpubsub.azure.v1"].map((protocol) => {
    const ws = new WebSocket(url, protocol);
    const r = { protocol, frames: [], close: null };
    ws.on("message", (data) => { r.frames.push(JSON.parse(data.toString())); });
    r.closed = new Promise((resolve) => ws.on("close", (code, reason) => { r.close = { code, reason: reason.toString() }; resolve(); }));
    return r;
  });
  await waitFor(() => sockets.every((r) => r.frames.some((f) => f.event === "connected")), "both raw connections connected");
  // The SDK (json subprotocol: no recovery attempt) reports the reason in its disconnected event.
  const sdk = await startClient(MATRIX.find((e) => e.protocol.name === "json"), url, { autoReconnect: false });
  await doomed.stop();
  await withTimeout(Promise.all(sockets.map((r) => r.closed)), "the closes at shutdown");
  for (const r of sockets) {
    const last = r.frames.at(-1);
    assert.deepEqual([last.type, last.event, typeof last.message], ["system", "disconnected", "string"],
      `${r.protocol}: system/disconnected before the close, got ${JSON.stringify(r.frames)}`);
    assert.equal(r.close.code, 1001, `${r.protocol}: close 1001 (going away), got ${JSON.stringify(r.close)}`);
  }
  await waitFor(() => sdk.disconnected.length > 0, "the SDK's disconnected event");
  assert.equal(typeof sdk.disconnected[0].message?.message, "string",
    `the disconnected event carries the server's reason: ${JSON.stringify(sdk.disconnected)}`);
});
