// The Python clients real users bring, run as they are (a venv with pinned versions that
// scripts/test makes under target/pyclients; RTHUB_PYTHON names another interpreter):
// signalrcore over every transport and protocol it can speak, pysignalr over WebSockets with
// both protocols. Each run joins a group, sends to it and must get the message back.
// Anonymous and with a user's JWT (the transport requests are checked against the identity
// that negotiated, so a client that drops its credentials on the way shows here).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { createHmac } from "node:crypto";
import { startServer } from "./helpers/server.mjs";

const python = process.env.RTHUB_PYTHON ?? resolve("target/pyclients/bin/python");
const script = resolve("interop-tests/python/clients.py");
const SECRET = "python-interop-secret-0123456789abcdef";
const RUN_TIMEOUT_MS = 60_000;

// What each client can speak. Not covered, because the clients cannot: SSE with MessagePack
// (text-only transport, for every client), signalrcore's long polling with MessagePack (its
// poller splits on the JSON record separator, and its binary poller class does not construct),
// pysignalr's SSE and long polling (it has neither).
const cases = [
  ["signalrcore", "WebSockets", "json"],
  ["signalrcore", "WebSockets", "messagepack"],
  ["signalrcore", "ServerSentEvents", "json"],
  ["signalrcore", "LongPolling", "json"],
  ["pysignalr", "WebSockets", "json"],
  ["pysignalr", "WebSockets", "messagepack"],
];

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
function jwt(sub) {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

function run(args) {
  return new Promise((resolveRun, reject) => {
    execFile(python, [script, ...args], { timeout: RUN_TIMEOUT_MS }, (error, stdout, stderr) => {
      const line = stdout.trim().split("\n").pop() ?? "";
      try {
        resolveRun(JSON.parse(line));
      } catch {
        reject(new Error(`${args.slice(0, 3).join(" ")}: no result (${error?.message ?? "no error"})\n` +
          `stdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-3000)}`));
      }
    });
  });
}

let server;
before(async () => {
  assert.ok(existsSync(python),
    `no Python with the clients at ${python}: run ./scripts/test (it makes the venv) or set RTHUB_PYTHON`);
  server = await startServer(["--jwt-secret", SECRET, "--signalr-long-poll-secs", "5"]);
});
after(async () => { await server?.stop(); });

for (const [client, transport, protocol] of cases) {
  describe(`${client} ${transport} ${protocol}`, () => {
    test("anonymous: join, send, receive", async () => {
      const outcome = await run([client, transport, protocol, server.hubUrl]);
      assert.equal(outcome.ok, true, JSON.stringify(outcome));
      assert.equal(outcome.message.fromUserId, null);
      assert.deepEqual(outcome.message.data, { from: client, transport });
    });

    test("with a user's token: the messages carry the user", async () => {
      const outcome = await run([client, transport, protocol, server.hubUrl, jwt("alice")]);
      assert.equal(outcome.ok, true, JSON.stringify(outcome));
      assert.equal(outcome.message.fromUserId, "alice");
      assert.match(outcome.message.fromConnectionId, /^[A-Za-z0-9_-]{22}$/);
    });
  });
}
