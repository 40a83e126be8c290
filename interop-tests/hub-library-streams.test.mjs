// The `hub` crate used as a library (hub/examples/demo_hub.rs): server-to-client streams with
// completion, error and cancellation, and client-to-server uploads, on every transport.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { signalR, waitFor, sleep } from "./helpers/server.mjs";

let child, hubUrl;
before(async () => {
  const binary = process.env.RTHUB_DEMO_HUB_BIN ?? resolve("target/debug/examples/demo_hub");
  child = spawn(binary, ["127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
  hubUrl = await new Promise((ok, fail) => {
    let out = "";
    child.stdout.on("data", (d) => { out += d; const m = /listening on (\S+)/.exec(out); if (m) ok(m[1]); });
    child.on("exit", (code) => fail(new Error(`demo hub exited: ${code}`)));
  });
});
after(() => child.kill());

const { WebSockets, ServerSentEvents, LongPolling } = signalR.HttpTransportType;
for (const [name, transport] of Object.entries({ WebSockets, ServerSentEvents, LongPolling })) {
  describe(name, () => {
    let c;
    before(async () => {
      c = new signalR.HubConnectionBuilder().withUrl(hubUrl, { transport }).configureLogging(signalR.LogLevel.None).build();
      await c.start();
    });
    after(() => c.stop());

    test("a stream's items then its completion", async () => {
      const items = [];
      await new Promise((ok, fail) => c.stream("Count", 5, null, null).subscribe({ next: (i) => { items.push(i); }, complete: ok, error: fail }));
      assert.deepEqual(items, [0, 1, 2, 3, 4]);
    });

    test("a failing stream completes with the error", async () => {
      await assert.rejects(
        new Promise((ok, fail) => c.stream("Count", 5, null, 2).subscribe({ next: () => {}, complete: ok, error: fail })),
        /HubException: failed at 2/,
      );
    });

    test("cancelling a stream stops the producer; the connection stays usable", async () => {
      const items = [];
      const subscription = c.stream("Count", 1000, 10, null).subscribe({
        next: (i) => { items.push(i); if (items.length === 3) subscription.dispose(); },
        complete: () => {}, error: () => {},
      });
      await waitFor(() => items.length >= 3, "three items");
      await sleep(200);
      assert.equal(items.length, 3, "no items after cancelling");
      assert.deepEqual(await c.invoke("Echo", { ok: true }), { ok: true });
    });

    test("an upload stream is summed", async () => {
      const subject = new signalR.Subject();
      const sum = c.invoke("Sum", subject);
      for (let i = 1; i <= 100; i++) subject.next(i);
      subject.complete();
      assert.equal(await sum, 5050);
    });

    test("streaming and non-streaming mismatches are errors", async () => {
      await assert.rejects(c.invoke("Count", 1), /streaming 'Count' method with a non-streaming invocation/);
      await assert.rejects(
        new Promise((ok, fail) => c.stream("Echo", 1).subscribe({ next: () => {}, complete: ok, error: fail })),
        /non-streaming 'Echo' method with a streaming invocation/,
      );
    });
  });
}
