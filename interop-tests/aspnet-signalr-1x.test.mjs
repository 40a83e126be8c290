// The legacy JavaScript client, @aspnet/signalr 1.x: it negotiates without `negotiateVersion`
// (version 0), so the `connectionId` it is told is also what it puts in `id=`. Every transport
// with JSON; the id other members see must not be that value, and must open nothing.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { createHmac } from "node:crypto";
import { startServer, connect, collect, waitFor, post } from "./helpers/server.mjs";

const legacy = createRequire(import.meta.url)("@aspnet/signalr");
const SECRET = "legacy-interop-secret-0123456789abcdef";

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
function jwt(sub) {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

let server;
const open = [];
before(async () => { server = await startServer(["--jwt-secret", SECRET, "--signalr-long-poll-secs", "5"]); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});

/** Records what negotiate told the client: 1.x keeps its `connectionId` only inside its URLs. */
class RecordingHttpClient extends legacy.DefaultHttpClient {
  async send(request) {
    const response = await super.send(request);
    if (request.url.includes("/negotiate")) this.negotiated = JSON.parse(response.content);
    return response;
  }
}

/** A started 1.x connection; `connection.negotiated` is its negotiate answer. */
async function legacyClient(transport, token) {
  const httpClient = new RecordingHttpClient(legacy.NullLogger.instance);
  const options = { transport, httpClient, ...(token ? { accessTokenFactory: () => token } : {}) };
  const connection = new legacy.HubConnectionBuilder()
    .withUrl(server.hubUrl, options)
    .configureLogging(legacy.LogLevel.None)
    .build();
  await connection.start();
  open.push(connection);
  connection.negotiated = httpClient.negotiated;
  return connection;
}

const current = async () => { const c = await connect(server); open.push(c); return c; };

for (const name of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
  const transport = legacy.HttpTransportType[name];
  describe(`@aspnet/signalr 1.x ${name} + json`, () => {
    test("group messages both ways with a current client", async () => {
      const old = await legacyClient(transport), now = await current();
      const toOld = collect(old), toNow = collect(now);
      const group = `app:legacy-${name}`;
      await old.invoke("JoinGroup", group);
      await now.invoke("JoinGroup", group);
      await old.invoke("SendToGroup", group, { from: "1.x" });
      await now.invoke("SendToGroup", group, { from: "10.x" });
      await waitFor(() => toOld.length === 2 && toNow.length === 2, "two messages each");
      assert.deepEqual(toOld.map((m) => m.data), [{ from: "1.x" }, { from: "10.x" }]);
      assert.equal(toNow[1].fromConnectionId, now.connectionId);
      const seen = toNow[0].fromConnectionId;
      assert.equal(old.negotiated.negotiateVersion, 0);
      assert.equal(old.negotiated.connectionToken, undefined);
      const ownId = old.negotiated.connectionId;
      assert.match(seen, /^[A-Za-z0-9_-]{22}$/);
      assert.notEqual(seen, ownId, "others see a public id, not the legacy client's token");
      // What the other member saw opens nothing.
      const forged = await fetch(`${server.hubUrl}?id=${seen}`, { method: "POST", body: "{}\u001e" });
      assert.equal(forged.status, 404);
      // REST takes the legacy client's own id for its connection.
      const joined = await post(server, "/api/_rt/join", { connectionId: ownId, channel: `legacy-rest-${name}` });
      assert.equal(joined[0], 200, JSON.stringify(joined));
    });

    test("a user's token reaches every request of the transport", async () => {
      const old = await legacyClient(transport, jwt("alice"));
      const got = collect(old);
      await old.invoke("JoinGroup", `app:legacy-auth-${name}`);
      await old.invoke("SendToGroup", `app:legacy-auth-${name}`, 1);
      await waitFor(() => got.length === 1, "the message");
      assert.equal(got[0].fromUserId, "alice");
      await old.stop();
    });
  });
}
