// The Python Web PubSub client (azure-messaging-webpubsubclient, pinned in
// interop-tests/python/requirements.txt; RTHUB_PYTHON names the interpreter) with a URL from
// GET /api/_rt/ws: connect, join, send JSON, text and binary, receive them back, and talk with a
// JavaScript client in the same group. The reliable protocol (the client's default) and plain JSON.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import {
  MATRIX, startWpsServer, accessUrl, startClient, stopClients, waitForMessage, group,
} from "./helpers/webpubsub.mjs";

const python = process.env.RTHUB_PYTHON ?? resolve("target/pyclients/bin/python");
const script = resolve("interop-tests/python/webpubsub_client.py");
const RUN_TIMEOUT_MS = 90_000;

function run(args) {
  return new Promise((resolveRun, reject) => {
    execFile(python, [script, ...args], { timeout: RUN_TIMEOUT_MS }, (error, stdout, stderr) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      try {
        resolveRun(JSON.parse(line));
      } catch {
        reject(new Error(`webpubsub_client.py ${args[1]}: no result (${error?.message ?? "no error"})\n` +
          `stdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-3000)}`));
      }
    });
  });
}

let server;
before(async () => {
  assert.ok(existsSync(python),
    `no Python with the clients at ${python}: run ./scripts/test (it makes the venv) or set RTHUB_PYTHON`);
  server = await startWpsServer();
});
after(async () => {
  await stopClients();
  await server?.stop();
});

for (const protocol of ["reliable", "json"]) {
  test(`azure-messaging-webpubsubclient ${protocol}: join, send, receive, and with a JavaScript client`, async () => {
    const g = group(`py-${protocol}`);
    const js = await startClient(MATRIX.find((e) => e.protocol.name === protocol), await accessUrl(server, { who: { user: "node-user" } }));
    await js.client.joinGroup(g);
    const outcome = run([await accessUrl(server, { who: { user: "py-user" } }), protocol, g]);
    // Once the Python client's JSON message is here it has joined: answer it.
    await waitForMessage(js, (m) => m.group === g && m.data?.from === "python", "the Python client's JSON message", 30_000);
    await js.client.sendToGroup(g, { from: "node" }, "json");
    const result = await outcome;
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.userId, "py-user");
    assert.equal(typeof result.connectionId, "string");
    // Ours come back in the order sent; node's answer may come among them.
    const [json, text, binary] = result.messages.filter((m) => m.fromUserId === "py-user");
    assert.deepEqual(json, { group: g, dataType: "json", data: { from: "python", n: [1, 2.5] }, fromUserId: "py-user", sequenceId: protocol === "reliable" ? 1 : null });
    if (protocol === "reliable") {
      assert.deepEqual(result.messages.map((m) => m.sequenceId), result.messages.map((_, i) => i + 1), "sequence ids 1, 2, … as received");
    }
    assert.deepEqual([text.dataType, text.data, text.fromUserId], ["text", "text from python", "py-user"]);
    assert.deepEqual([binary.dataType, binary.data], ["binary", [0, 1, 254, 255]]);
    const fromNode = result.messages.find((m) => m.data?.from === "node");
    assert.equal(fromNode.fromUserId, "node-user");

    // What the JavaScript client saw of the Python messages.
    await waitForMessage(js, (m) => m.group === g && m.dataType === "binary", "the Python client's binary message");
    const seen = js.messages.filter((m) => m.group === g && m.fromUserId === "py-user");
    assert.deepEqual(seen.map((m) => m.dataType), ["json", "text", "binary"]);
    assert.equal(seen[1].data, "text from python");
    assert.deepEqual([...new Uint8Array(seen[2].data)], [0, 1, 254, 255]);
  });
}
