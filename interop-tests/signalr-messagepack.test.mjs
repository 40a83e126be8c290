// @microsoft/signalr-protocol-msgpack over WebSockets and long polling (SSE is text-only and
// refused: see signalr-transports.test.mjs).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, collect, waitFor, signalR } from "./helpers/server.mjs";

const { WebSockets, LongPolling } = signalR.HttpTransportType;
let server;
const open = [];
before(async () => { server = await startServer(["--signalr-long-poll-secs", "5"]); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };

for (const [name, transport] of Object.entries({ WebSockets, LongPolling })) {
  describe(`${name} + messagepack`, () => {
    const options = { transport, protocol: "messagepack" };

    test("binary frames and the exact payload, also to a JSON member of the same group", async () => {
      const a = await client(options), b = await client(options);
      const json = await client({ transport: WebSockets });
      assert.equal(a.connection.transport.constructor.name, name === "WebSockets" ? "WebSocketTransport" : "LongPollingTransport");
      const got = collect(b), gotJson = collect(json);
      const group = `app:mp-${name}`;
      await b.invoke("JoinGroup", group);
      await json.invoke("JoinGroup", group);
      const data = { text: "hé", n: 1.5, list: [1, null, true], nested: { k: "v" } };
      await a.invoke("SendToGroup", group, data);
      await waitFor(() => got.length === 1 && gotJson.length === 1, "both members");
      const expected = { group, data, fromUserId: null, fromConnectionId: a.connectionId };
      assert.deepEqual(got[0], expected);
      assert.deepEqual(gotJson[0], expected);
    });

    test("300 messages in order, including ones over 128 B and 16 KiB", async () => {
      const a = await client(options), b = await client(options);
      const got = collect(b);
      const group = `app:mp-order-${name}`;
      await b.invoke("JoinGroup", group);
      for (let i = 0; i < 300; i++) a.send("SendToGroup", group, { i, pad: "x".repeat(i % 30 === 0 ? 20_000 : i) });
      await waitFor(() => got.length === 300, "300 messages");
      assert.deepEqual(got.map((m) => m.data.i), Array.from({ length: 300 }, (_, i) => i));
    });

    test("errors are completions; uploads work; stop is clean", async () => {
      const a = await client(options), b = await client(options);
      await assert.rejects(a.invoke("Nope"), /Unknown hub method 'Nope'/);
      await assert.rejects(a.invoke("JoinGroup", "app:p:q"), /private/);
      const got = collect(b);
      await b.invoke("JoinGroup", `app:mp-up-${name}`);
      const subject = new signalR.Subject();
      const done = a.invoke("UploadToGroup", `app:mp-up-${name}`, subject);
      for (let i = 0; i < 12; i++) subject.next(i);
      subject.complete();
      assert.equal(await done, null);
      await waitFor(() => got.length === 12, "12 uploaded items");
      const closed = new Promise((resolve) => a.onclose(resolve));
      await a.stop();
      assert.equal(await closed, undefined);
    });
  });
}
