// /realtime in a real browser: Debian's Chromium (driven by playwright-core, never a downloaded
// browser) opens a page from another origin that uses the browser's own EventSource; database
// and custom events show in the page, and when rthub restarts on the same SQLite database the
// browser reconnects by itself with Last-Event-ID and misses nothing. The page publishes its
// custom event itself (a preflighted cross-origin POST /realtime).
// Needs /usr/bin/chromium (scripts/test installs Debian's `chromium` package).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants, rmSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { startServer, tempDir } from "./helpers/server.mjs";
import { SCHEMA, KEYS, config, create } from "./helpers/realtime.mjs";

const CHROMIUM = "/usr/bin/chromium";
const KEY = KEYS.everything.key;

let browser, page, pages, dir, server, pageOrigin;
const requests = [];

function page_html(rtOrigin) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>rthub realtime</title></head>
<body data-greetings="0" data-errors="0">
<h1>rthub /realtime</h1>
<ul id="events"></ul>
<script>
  const list = document.getElementById("events");
  const es = new EventSource(${JSON.stringify(`${rtOrigin}/realtime?apikey=${KEY}`)});
  const show = (type) => (e) => {
    const item = document.createElement("li");
    item.dataset.type = type;
    item.dataset.id = e.lastEventId;
    item.textContent = e.data;
    list.append(item);
  };
  for (const type of ["post", "publish", "reload"]) es.addEventListener(type, show(type));
  es.addEventListener("message", () => { document.body.dataset.greetings = Number(document.body.dataset.greetings) + 1; });
  es.addEventListener("error", () => { document.body.dataset.errors = Number(document.body.dataset.errors) + 1; });
</script>
</body></html>`;
}

const shown = () => page.$$eval("#events li", (items) => items.map((li) => ({ type: li.dataset.type, id: li.dataset.id, data: JSON.parse(li.textContent) })));
const waitShown = async (predicate, what) => {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const events = await shown();
    if (predicate(events)) return events;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the page shows ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const greetings = async () => Number(await page.getAttribute("body", "data-greetings"));

const startRthub = (port) => startServer([], {
  schema: SCHEMA,
  config: config({ realtime: { retry_ms: 200 }, extra: `cors_origins = [${JSON.stringify(pageOrigin)}]\n` }),
  database: join(dir, "rt.db"),
  port,
});

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: this test needs Debian's Chromium ` +
      "(apt-get install -y --no-install-recommends chromium; scripts/test installs it)");
  }
  dir = tempDir();
  // The page's own origin: another port than rthub's, so the stream is a CORS request.
  let html = "";
  pages = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((r) => pages.listen(0, "127.0.0.1", r));
  pageOrigin = `http://127.0.0.1:${pages.address().port}`;
  server = await startRthub();
  html = page_html(server.origin);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  page = await browser.newPage();
  page.on("request", (request) => {
    if (request.url().includes("/realtime")) requests.push(request);
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => (pages ? pages.close(r) : r()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the browser's EventSource shows posts and custom events, and resumes across a restart", async () => {
  await page.goto(pageOrigin);
  await page.waitForFunction(() => Number(document.body.dataset.greetings) >= 1, null, { timeout: 15_000 });

  // Published by the page itself: a cross-origin POST with x-apikey (a preflighted request).
  const published = await page.evaluate(async ([url, key]) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "x-apikey": key, "content-type": "application/json" },
      body: JSON.stringify({ event: "GOAL", data: { team: "home" } }),
    });
    return [response.status, await response.json()];
  }, [`${server.origin}/realtime`, KEY]);
  assert.deepEqual(published, [200, { message: "OK" }]);
  await waitShown((events) => events.some((e) => e.type === "publish"), "the custom event");
  const first = await create(server, "customers", { name: "before restart" });
  let events = await waitShown((list) => list.some((e) => e.type === "post"), "the post");
  assert.deepEqual(events.map((e) => e.type), ["publish", "post"]);
  assert.deepEqual(events[0].data, { event: "GOAL", data: { team: "home" } });
  assert.match(events[0].id, /^\d+-\d+$/);
  assert.equal(events[1].data.event, "post");
  assert.equal(events[1].data.collection, "customers");
  assert.deepEqual(events[1].data.data, { _id: first.id, ...first });
  const lastBeforeRestart = events[1].id;

  // Restart on the same port and database; write at once, while the browser may still be
  // waiting to reconnect (it gets the item replayed) or after it did (it gets it live).
  const port = server.port;
  await server.stop();
  server = await startRthub(port);
  const second = await create(server, "customers", { name: "after restart" });
  events = await waitShown((list) => list.filter((e) => e.type === "post").length >= 2, "the post after the restart");
  await page.waitForFunction(() => Number(document.body.dataset.greetings) >= 2, null, { timeout: 15_000 });
  const third = await create(server, "customers", { name: "live again" });
  events = await waitShown((list) => list.filter((e) => e.type === "post").length >= 3, "the third post");

  assert.deepEqual(events.map((e) => e.type), ["publish", "post", "post", "post"], "nothing lost, nothing twice, no reload");
  assert.deepEqual(events.slice(1).map((e) => e.data.data._id), [first.id, second.id, third.id]);
  assert.deepEqual(events[2].data.data, { _id: second.id, ...second });
  const ids = events.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `no id twice: ${ids}`);
  // The browser itself resumed: a later request carried the last id it had.
  const resumes = await Promise.all(requests.slice(1).map(async (r) => (await r.allHeaders())["last-event-id"]));
  assert.ok(resumes.includes(lastBeforeRestart), `a reconnect with Last-Event-ID ${lastBeforeRestart}; sent: ${JSON.stringify(resumes)}`);
  assert.ok(await greetings() >= 2);
});
