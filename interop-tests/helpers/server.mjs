// Starts a real rthub binary for a test file and builds clients against it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export { signalR };

/** The server binary: `RTHUB_BIN`, else target/debug/rthub under the current directory (the repo root). */
export const binary = process.env.RTHUB_BIN ?? resolve("target/debug/rthub");
export const SERVER_KEY = "interop-server-key-0123456789";
const START_TIMEOUT_MS = 30_000;

// Children still running are killed when this test process ends, however it ends.
const running = new Set();
const killAll = () => { for (const child of running) child.kill("SIGKILL"); running.clear(); };
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => { killAll(); process.kill(process.pid, signal); });
}

// The server must run on its defaults plus the flags a test passes, whatever the caller's shell
// exports (RTHUB_API_NAME, RTHUB_CONFIG, DATABASE_URL, ... would change them).
function serverEnv() {
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" };
  for (const key of Object.keys(env)) {
    if (key.startsWith("RTHUB_") || key === "DATABASE_URL") delete env[key];
  }
  return env;
}

const tail = (text, max = 4000) => (text.length > max ? `…${text.slice(-max)}` : text) || "(empty)";

/** A new temporary directory (for a database file that outlives one server process). */
export const tempDir = () => mkdtempSync(join(tmpdir(), "rthub-interop-"));

/**
 * Start rthub on a free port (`--listen 127.0.0.1:0`, a throwaway SQLite database); resolves
 * once its stdout says `listening on http://127.0.0.1:PORT`.
 * Returns { url, baseUrl, hubUrl, origin, port, stderr(), stop() } — `url`/`hubUrl` is the hub
 * endpoint, `baseUrl`/`origin` the server's origin.
 * Options: `config` (TOML text, passed as `--config FILE`), `schema` (JSON text or an object,
 * passed as `--schema FILE`), `database` (a SQLite file the caller owns and keeps, e.g. to
 * restart on the same data; default: a throwaway one), `port` (default 0: a free one).
 */
export async function startServer(extraArgs = [], options = {}) {
  if (!existsSync(binary)) {
    throw new Error(`rthub binary not found at ${binary}: run \`cargo build\` in the repository root or set RTHUB_BIN`);
  }
  const dir = tempDir();
  const files = [];
  if (options.config !== undefined) {
    writeFileSync(join(dir, "rthub.toml"), options.config);
    files.push("--config", join(dir, "rthub.toml"));
  }
  if (options.schema !== undefined) {
    const schema = typeof options.schema === "string" ? options.schema : JSON.stringify(options.schema);
    writeFileSync(join(dir, "schema.json"), schema);
    files.push("--schema", join(dir, "schema.json"));
  }
  const child = spawn(binary, [
    "--listen", `127.0.0.1:${options.port ?? 0}`,
    "--database", `sqlite://${options.database ?? join(dir, "rthub.db")}`,
    "--server-key", SERVER_KEY,
    ...files,
    ...extraArgs,
  ], { stdio: ["ignore", "pipe", "pipe"], env: serverEnv() });
  running.add(child);
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (d) => { stderr += d; });
  let origin;
  try {
    origin = await new Promise((resolveOrigin, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `rthub did not print "listening on http://…" within ${START_TIMEOUT_MS / 1000} s.\n` +
        `stdout: ${tail(stdout)}\nstderr: ${tail(stderr)}`)), START_TIMEOUT_MS);
      child.stdout.on("data", (d) => {
        stdout += d;
        const found = /listening on (http:\/\/[^\s/]+)/.exec(stdout);
        if (found) { clearTimeout(timer); resolveOrigin(found[1]); }
      });
      child.on("error", (e) => { clearTimeout(timer); reject(new Error(`could not start ${binary}: ${e.message}`)); });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`rthub exited before listening (code ${code}, signal ${signal}).\nstderr: ${tail(stderr)}`));
      });
    });
  } catch (e) {
    running.delete(child);
    child.kill("SIGKILL");
    child.stdout.destroy();
    child.stderr.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const hubUrl = `${origin}/api/_rt/signalr`;
  return {
    url: hubUrl,
    baseUrl: origin,
    hubUrl,
    origin,
    port: Number(new URL(origin).port),
    stderr: () => stderr,
    async stop() {
      if (running.delete(child)) {
        const exited = new Promise((r) => { if (child.exitCode !== null || child.signalCode !== null) r(); else child.once("exit", r); });
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A new, not yet started HubConnection. Forces WebSockets unless `transport` is given;
 * an explicit `transport: undefined` lets the client pick from the negotiate response.
 */
export function build(server, options = {}) {
  const { protocol = "json", url, configure } = options;
  const transport = "transport" in options ? options.transport : signalR.HttpTransportType.WebSockets;
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url ?? server.hubUrl, transport === undefined ? {} : { transport })
    .configureLogging(signalR.LogLevel.None);
  if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  if (configure) builder = configure(builder);
  return builder.build();
}

/** A started connection. `protocol`: "json" | "messagepack". */
export async function connect(server, options = {}) {
  const connection = build(server, options);
  await connection.start();
  return connection;
}

/** Collects the arguments of `target` messages into the returned array, as they arrive. */
export function collect(connection, target = "message") {
  const received = [];
  connection.on(target, (payload) => { received.push(payload); });
  return received;
}

/** Waits until `predicate()` holds, failing after `ms` with `what` (and `detail()`, if given) in the message. */
export async function waitFor(predicate, what, ms = 10_000, detail) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `; ${detail()}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Waits until `received` (from `collect`) holds at least `n` messages; a timeout is a failure
 * that says how many arrived and shows the last ones. Resolves to `received`.
 */
export async function waitForMessages(received, n, what = "messages", ms = 10_000) {
  await waitFor(() => received.length >= n, `${n} ${what}`, ms,
    () => `got ${received.length}, last: ${JSON.stringify(received.slice(-3)).slice(0, 500)}`);
  return received;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POST JSON to the server; returns [status, body]. */
export async function post(server, path, body, headers = {}) {
  const response = await fetch(server.origin + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* keep text */ }
  return [response.status, parsed];
}
