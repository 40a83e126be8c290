// Every transport the official client can choose, with JSON (MessagePack: see
// signalr-messagepack.test.mjs): group send/receive, ordering, errors, uploads, clean stop.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startServer, connect, collect, waitFor, sleep, signalR } from "./helpers/server.mjs";

const { WebSockets, ServerSentEvents, LongPolling } = signalR.HttpTransportType;
const transports = { WebSockets, ServerSentEvents, LongPolling };
const transportClass = { WebSockets: "WebSocketTransport", ServerSentEvents: "ServerSentEventsTransport", LongPolling: "LongPollingTransport" };

let server;
const open = [];
before(async () => { server = await startServer(["--signalr-long-poll-secs", "5"]); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };

for (const [name, transport] of Object.entries(transports)) {
  describe(`${name} + json`, () => {
    test("uses the transport asked for", async () => {
      const c = await client({ transport });
      assert.equal(c.connection.transport.constructor.name, transportClass[name]);
    });

    test("group send and receive with the exact payload", async () => {
      const a = await client({ transport }), b = await client({ transport });
      const got = collect(b);
      await b.invoke("JoinGroup", `app:${name}`);
      await a.invoke("SendToGroup", `app:${name}`, { line: "one\ntwo" });
      await waitFor(() => got.length === 1, "the message");
      assert.deepEqual(got[0], { group: `app:${name}`, data: { line: "one\ntwo" }, fromUserId: null, fromConnectionId: a.connectionId });
    });

    test("300 messages arrive in order", async () => {
      const a = await client({ transport }), b = await client({ transport });
      const got = collect(b);
      await b.invoke("JoinGroup", `app:${name}-order`);
      for (let i = 0; i < 300; i++) a.send("SendToGroup", `app:${name}-order`, i);
      await waitFor(() => got.length === 300, "300 messages");
      assert.deepEqual(got.map((m) => m.data), Array.from({ length: 300 }, (_, i) => i));
    });

    test("errors are completions and the connection stays up", async () => {
      const a = await client({ transport });
      await assert.rejects(a.invoke("Nope"), /Unknown hub method 'Nope'/);
      await assert.rejects(a.invoke("JoinGroup", "app:x:y"), /private/);
      await a.invoke("JoinGroup", `app:${name}-ok`);
    });

    test("UploadToGroup sends every streamed item to the group", async () => {
      const a = await client({ transport }), b = await client({ transport });
      const got = collect(b);
      await b.invoke("JoinGroup", `app:${name}-upload`);
      const subject = new signalR.Subject();
      const done = a.invoke("UploadToGroup", `app:${name}-upload`, subject);
      for (let i = 0; i < 25; i++) subject.next({ i });
      subject.complete();
      assert.equal(await done, null);
      await waitFor(() => got.length === 25, "25 items");
      assert.deepEqual(got.map((m) => m.data.i), Array.from({ length: 25 }, (_, i) => i));
    });

    test("stop() ends the connection without an error", async () => {
      const a = await connect(server, { transport });
      const closed = new Promise((resolve) => a.onclose(resolve));
      await a.stop();
      assert.equal(await closed, undefined);
    });
  });
}

test("long polling: stop() ends the connection on the server", async () => {
  const a = await connect(server, { transport: LongPolling });
  const token = a.connection.connectionId; // negotiate v1: the token is what polls carry
  const url = a.connection.transport._url ?? `${server.hubUrl}?id=${token}`;
  await a.stop();
  // A poll for the ended connection is 404 (disposed) or 204 (ended, not yet forgotten).
  const response = await fetch(url);
  assert.ok([204, 404].includes(response.status), `status ${response.status}`);
});

test("stateful reconnect: a dropped socket re-attaches and every message arrives once, in order", async () => {
  // The client talks through a TCP proxy that we cut in the middle of the stream.
  const port = Number(new URL(server.origin).port);
  const sockets = new Set();
  const proxy = net.createServer((inbound) => {
    const outbound = net.connect(port, "127.0.0.1");
    sockets.add(inbound); sockets.add(outbound);
    inbound.pipe(outbound); outbound.pipe(inbound);
    const end = () => { inbound.destroy(); outbound.destroy(); };
    for (const s of [inbound, outbound]) { s.on("error", end); s.on("close", end); }
  });
  await new Promise((r) => proxy.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${proxy.address().port}/api/_rt/signalr`;
    const receiver = await client({ url, configure: (b) => b.withStatefulReconnect() });
    const sender = await client();
    const got = collect(receiver);
    let reconnecting = 0;
    receiver.onreconnecting(() => { reconnecting++; });
    const id = receiver.connectionId;
    await receiver.invoke("JoinGroup", "app:stateful");
    for (let i = 0; i < 300; i++) {
      await sender.invoke("SendToGroup", "app:stateful", i);
      if (i === 150) { for (const s of sockets) s.destroy(); sockets.clear(); }
    }
    await waitFor(() => got.length >= 300, "300 messages");
    await sleep(200);
    assert.deepEqual(got.map((m) => m.data), Array.from({ length: 300 }, (_, i) => i));
    assert.equal(receiver.connectionId, id, "the same connection");
    assert.equal(reconnecting, 0, "no full reconnect");
    // Client-to-server messages keep flowing after the re-attach.
    await receiver.invoke("SendToGroup", "app:stateful", "after");
    await waitFor(() => got.length === 301, "the receiver's own message");
  } finally {
    proxy.close();
  }
});

test("MessagePack over Server-Sent Events is refused at the handshake", async () => {
  const { MessagePackHubProtocol } = await import("@microsoft/signalr-protocol-msgpack");
  // The client never picks SSE for a binary protocol, so force it and expect a failure.
  const c = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl, { transport: ServerSentEvents })
    .withHubProtocol(new MessagePackHubProtocol())
    .configureLogging(signalR.LogLevel.None)
    .build();
  await assert.rejects(c.start());
});
