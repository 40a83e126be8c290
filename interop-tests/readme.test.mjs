// The README's JavaScript examples run as written: each ```js block is run as a module against a
// fresh server, with only its origin (http://127.0.0.1:8080) pointed at that server, and what it
// promises (a `message`, a `change`) must show in its output.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { startServer } from "./helpers/server.mjs";

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const blocks = [...readFileSync(resolve("README.md"), "utf8").matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test("the README has JavaScript examples", () => assert.ok(blocks.length >= 1));

// Inside the repository, so that the example's imports resolve from its node_modules.
const dir = resolve("target", "readme-examples");

blocks.forEach((code, i) => {
  test(`README example ${i + 1} runs and shows its message and change`, async () => {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `example-${process.pid}-${i}.mjs`);
    writeFileSync(file, code.replaceAll("http://127.0.0.1:8080", server.origin));
    const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => { out += d; });
    child.stderr.on("data", (d) => { err += d; });
    const exited = new Promise((r) => child.on("exit", (code) => r(code)));
    let settled = false;
    try {
      const shown = await Promise.race([
        (async () => {
          while (!settled && !(/app:lobby \{ text: 'hello' \}/.test(out) && /create orders [0-9a-f-]{36}/.test(out))) {
            await new Promise((r) => setTimeout(r, 50));
          }
          return true;
        })(),
        exited.then((code) => { throw new Error(`the example exited (${code}) early:\n${out}\n${err}`); }),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no message and change within 15 s:\n${out}\n${err}`)), 15_000)),
      ]);
      assert.ok(shown);
      assert.equal(err.includes("Error"), false, err);
    } finally {
      settled = true;
      child.kill("SIGKILL");
      rmSync(file, { force: true });
    }
  });
});
