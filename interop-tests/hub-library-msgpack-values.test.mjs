// The `hub` crate used as a library (hub/examples/test_hub.rs) with the official
// @microsoft/signalr-protocol-msgpack client: a Uint8Array and a Date sent to a hub method come
// back as a Uint8Array and a Date (MessagePack `bin` and timestamps kept by `HubValue`), and
// JSON clients get the same values as base64 and ISO 8601 text, as ASP.NET Core writes them.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { signalR } from "./helpers/server.mjs";

let child, hubUrl;
before(async () => {
  const binary = process.env.RTHUB_TEST_HUB_BIN ?? resolve("target/debug/examples/test_hub");
  child = spawn(binary, ["127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  hubUrl = await new Promise((ok, fail) => {
    let out = "";
    child.stdout.on("data", (d) => { out += d; const m = /listening on (\S+)/.exec(out); if (m) ok(m[1]); });
    child.on("exit", (code) => fail(new Error(`test hub exited: ${code}`)));
  });
});
after(() => child.kill());

const connectWith = async (transport, protocol) => {
  let builder = new signalR.HubConnectionBuilder().withUrl(hubUrl, { transport }).configureLogging(signalR.LogLevel.None);
  if (protocol) builder = builder.withHubProtocol(protocol);
  const c = builder.build();
  await c.start();
  return c;
};

const { WebSockets, LongPolling } = signalR.HttpTransportType;
for (const [name, transport] of Object.entries({ WebSockets, LongPolling })) {
  describe(`${name} + messagepack`, () => {
    let c;
    before(async () => { c = await connectWith(transport, new MessagePackHubProtocol()); });
    after(() => c.stop());

    test("a Uint8Array and a Date come back as a Uint8Array and a Date", async () => {
      const sent = {
        byteArray: new Uint8Array([0, 1, 2, 255]),
        dateTime: new Date(1700000000123),
        before1970: new Date(-1500),
        nested: [new Uint8Array([7]), { at: new Date(0) }],
        string: "hé",
      };
      const got = await c.invoke("EchoComplexObject", sent);
      assert.ok(got.byteArray instanceof Uint8Array, `byteArray is ${got.byteArray?.constructor?.name}`);
      assert.deepEqual([...got.byteArray], [0, 1, 2, 255]);
      assert.ok(got.dateTime instanceof Date, `dateTime is ${got.dateTime?.constructor?.name}`);
      assert.equal(got.dateTime.getTime(), 1700000000123);
      assert.equal(got.before1970.getTime(), -1500);
      assert.ok(got.nested[0] instanceof Uint8Array);
      assert.deepEqual([...got.nested[0]], [7]);
      assert.equal(got.nested[1].at.getTime(), 0);
      assert.equal(got.string, "hé");
    });

    test("a server-made object has bin and a timestamp, as .NET sends byte[] and DateTime", async () => {
      const got = await c.invoke("SendComplexObject");
      assert.ok(got.byteArray instanceof Uint8Array);
      assert.deepEqual([...got.byteArray], [1, 2, 3]);
      assert.ok(got.dateTime instanceof Date);
      assert.equal(got.dateTime.toISOString(), "2000-01-01T00:00:00.000Z");
      assert.deepEqual(got.intArray, [1, 2, 3]);
    });
  });
}

describe("json", () => {
  let c;
  before(async () => { c = await connectWith(WebSockets); });
  after(() => c.stop());

  test("the same values are base64 and ISO 8601 text", async () => {
    const got = await c.invoke("SendComplexObject");
    assert.equal(got.byteArray, "AQID");
    assert.equal(got.dateTime, "2000-01-01T00:00:00Z");
    // What a JSON client sends is JSON: a Date is its ISO text, and comes back as it.
    const echoed = await c.invoke("EchoComplexObject", { dateTime: new Date(0), bytes: "AQID" });
    assert.deepEqual(echoed, { dateTime: "1970-01-01T00:00:00.000Z", bytes: "AQID" });
  });
});
