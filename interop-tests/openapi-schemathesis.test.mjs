// schemathesis (pinned in interop-tests/python/schemathesis-requirements.txt, in the venv that
// scripts/test makes under target/pyclients; RTHUB_PYTHON names another interpreter) reads
// /api/_openapi.json and sends property-based requests to every operation it describes, valid
// and invalid ones: no answer may be a server error, and none may break the document's
// response schemas. As the server identity (which may do everything, so the writes and reads
// really happen), anonymous (the access rules' 401s) and as a user (their 403s).
// GET /realtime is left out: it is a stream that never ends by itself.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { createHmac } from "node:crypto";
import { startServer, SERVER_KEY, tempDir } from "./helpers/server.mjs";

const python = process.env.RTHUB_PYTHON ?? resolve("target/pyclients/bin/python");
// A fixed seed keeps a run reproducible; RTHUB_SCHEMATHESIS_SEED tries others.
const SEED = process.env.RTHUB_SCHEMATHESIS_SEED ?? "20261203";
const RUN_TIMEOUT_MS = 110_000;
const SECRET = "schemathesis-interop-secret-0123456789";

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
function jwt(sub) {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${unsigned}.${createHmac("sha256", SECRET).update(unsigned).digest("base64url")}`;
}

const everyone = ["GET", "POST", "PUT", "PATCH", "DELETE", "LISTEN"]
  .map((method) => ({ method, roleNames: ["_EVERYONE"] }));
// Every property kind and constraint, a schemaless collection, and collections with rules
// from open to the server's only.
const SCHEMA = {
  collections: [
    { name: "customers",
      properties: [
        { name: "name", type: "string", required: true, minLength: 1, maxLength: 20 },
        { name: "vip", type: "boolean", default: false }],
      access: everyone },
    { name: "orders",
      properties: [
        { name: "customer", type: "lookup", target: "customers" },
        { name: "total", type: "decimal", min: 0, max: 1000000 },
        { name: "quantity", type: "integer", min: 1, max: 99, default: 1 },
        { name: "note", type: "string" }],
      access: everyone.filter((rule) => rule.method !== "PUT") },
    { name: "events",
      properties: [
        { name: "day", type: "date" },
        { name: "at", type: "date-time", required: true },
        { name: "ref", type: "guid" },
        { name: "extra", type: "object" },
        { name: "count", type: "integer" }],
      access: [{ method: "GET", roleNames: ["_EVERYONE"] }, { method: "POST", roleNames: ["_AUTHENTICATED_USER"] }] },
    { name: "things", access: everyone },
    { name: "secrets", properties: [{ name: "value", type: "string" }], access: [] },
  ],
};

function schemathesis(args) {
  return new Promise((resolveRun) => {
    execFile(python, ["-m", "schemathesis.cli", "run", ...args],
      { timeout: RUN_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, cwd: reports, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => resolveRun({ code: error ? (error.code ?? error.signal) : 0, stdout, stderr }));
  });
}

const tail = (text, max = 12_000) => (text.length > max ? `…${text.slice(-max)}` : text);

/** The summary's figures: operations tested and test cases generated. */
function figures(stdout) {
  const tested = /Tested:\s*(\d+)/.exec(stdout)?.[1];
  const generated = /(\d+) generated/.exec(stdout)?.[1];
  return { tested: Number(tested), generated: Number(generated) };
}

let server;
// schemathesis's working directory: it keeps its Hypothesis database there.
let reports;
before(async () => {
  assert.ok(existsSync(python),
    `no Python with schemathesis at ${python}: run ./scripts/test (it makes the venv) or set RTHUB_PYTHON`);
  reports = tempDir();
  server = await startServer(["--jwt-secret", SECRET], { schema: SCHEMA });
});
after(async () => {
  await server?.stop();
  if (reports) rmSync(reports, { recursive: true, force: true });
});

async function run(t, extra, maxExamples) {
  const outcome = await schemathesis([
    `${server.origin}/api/_openapi.json`,
    "--checks", "not_a_server_error,response_schema_conformance",
    "--max-examples", String(maxExamples),
    "--exclude-operation-id", "realtimeStream",
    "--seed", SEED,
    "--request-timeout", "10",
    ...extra,
  ]);
  const found = figures(outcome.stdout);
  t.diagnostic(`seed ${SEED}: ${found.tested} operations tested, ${found.generated} test cases generated`);
  assert.equal(outcome.code, 0,
    `schemathesis exited ${outcome.code}\nstdout: ${tail(outcome.stdout)}\nstderr: ${tail(outcome.stderr, 4000)}\n` +
    `server stderr: ${tail(server.stderr(), 4000)}`);
  return found;
}

test("as the server identity: no server error, no answer that breaks the description", async (t) => {
  const found = await run(t, ["--header", `x-apikey: ${SERVER_KEY}`], 25);
  // Every collection's eight operations and the fixed ones but the stream.
  assert.ok(found.tested >= SCHEMA.collections.length * 8 + 8, JSON.stringify(found));
});

test("anonymous: the 401s are in the description too", async (t) => {
  const found = await run(t, [], 8);
  assert.ok(found.tested >= SCHEMA.collections.length * 8, JSON.stringify(found));
});

test("as a user: the 403s are in the description too", async (t) => {
  const found = await run(t, ["--header", `Authorization: Bearer ${jwt("ada")}`], 8);
  assert.ok(found.tested >= SCHEMA.collections.length * 8, JSON.stringify(found));
});
