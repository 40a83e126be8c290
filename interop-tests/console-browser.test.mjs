// The web console (/_console) in a real browser: Debian's Chromium (driven by playwright-core,
// never a downloaded browser) signs in with the server key, sees a node client's connection
// and its channel appear, sees a message counted in the traffic panel, creates an item and sees
// its change arrive over the console's own SignalR stream; a wrong key is refused with a clear
// error and nothing loads. RTHUB_SCREENSHOTS=1 also rewrites docs/console-*.png.
// Needs /usr/bin/chromium (scripts/test installs Debian's `chromium` package).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { accessSync, constants } from "node:fs";
import { chromium } from "playwright-core";
import { startServer, connect, SERVER_KEY, post } from "./helpers/server.mjs";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOTS = process.env.RTHUB_SCREENSHOTS === "1";

let browser, server;
const clients = [];
const pageErrors = [];

before(async () => {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`${CHROMIUM} is missing: this test needs Debian's Chromium ` +
      "(apt-get install -y --no-install-recommends chromium; scripts/test installs it)");
  }
  server = await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
});

after(async () => {
  for (const client of clients) await client.stop();
  await browser?.close();
  await server?.stop();
});

async function openConsole(viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${server.origin}/_console`);
  return page;
}

async function signIn(page, key) {
  await page.fill("#apikey", key);
  await page.press("#apikey", "Enter");
}

const rowCount = (page, selector) => page.$$eval(selector, (rows) => rows.length);

test("a wrong key is refused with a clear error and nothing is loaded", async () => {
  const page = await openConsole();
  await signIn(page, "not-the-server-key-0123456789");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  const error = await page.textContent("#login-error");
  assert.match(error, /Sign-in failed/);
  assert.match(error, /credentials|key/i);
  assert.equal(await page.isHidden("#console"), true);
  assert.equal(await rowCount(page, "#connections tbody tr"), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused key is not kept");
  await page.context().close();
});

test("the console shows connections, messages and live changes", async () => {
  const page = await openConsole();
  // Keyboard only: the key field, then Enter submits the form.
  await page.focus("#apikey");
  await page.keyboard.type(SERVER_KEY);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#console:not([hidden])");
  await page.waitForSelector("#console[data-hub=connected]");
  assert.equal(await page.isHidden("#login"), true);
  assert.equal(await page.textContent("#login-error"), "");

  // A node client connects and joins a channel: the console lists both.
  const client = await connect(server);
  clients.push(client);
  await client.invoke("JoinGroup", "app:room-1");
  await page.waitForSelector(`#connections tr[data-connection-id="${client.connectionId}"]`, { timeout: 10_000 });
  const row = await page.textContent(`#connections tr[data-connection-id="${client.connectionId}"]`);
  assert.match(row, /signalr\.json/);
  assert.match(row, /WebSockets/);
  assert.match(row, /app:room-1/);
  await page.waitForSelector("#channels tr[data-channel=room-1]");
  await page.click("#channels tr[data-channel=room-1] button");
  await page.waitForFunction(() => document.getElementById("members").textContent.includes("Members of room-1 (1)"));

  // A message to the group is counted from /metrics.
  const sentBefore = Number(await page.textContent("#stat-sent"));
  const received = new Promise((resolve) => client.on("message", resolve));
  const [status] = await post(server, "/api/_rt/send", { channel: "room-1", body: { n: 1 } }, { "x-apikey": SERVER_KEY });
  assert.equal(status, 200);
  await received;
  await page.waitForFunction((before) => Number(document.getElementById("stat-sent").textContent) > before, sentBefore, { timeout: 10_000 });

  // The console's own send form reaches the node client too.
  const second = new Promise((resolve) => client.on("message", (m) => { if (m?.data?.from === "console") resolve(m); }));
  await page.fill("#send-channel", "room-1");
  await page.fill("#send-body", JSON.stringify({ from: "console" }));
  await page.click("#send-form button[type=submit]");
  await second;
  await page.waitForFunction(() => document.querySelector("#send-form .result").textContent.startsWith("Sent"));

  // An item created in the browser: its change arrives over StreamChanges.
  await page.selectOption("#collection", "customers");
  await page.fill("#item-json", JSON.stringify({ name: "Console Customer" }));
  await page.click("#item-save");
  await page.waitForFunction(() => /Created /.test(document.querySelector("#item-form .result").textContent));
  const id = (await page.textContent("#item-form .result")).replace(/^Created |\.$/g, "");
  await page.waitForSelector(`#changes li[data-collection=customers][data-operation=create][data-id="${id}"]`, { timeout: 10_000 });
  await page.waitForSelector(`#items tr[data-id="${id}"]`);

  // A change made elsewhere shows up live, too.
  const patched = await fetch(`${server.origin}/api/customers/${id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json", "x-apikey": SERVER_KEY },
    body: JSON.stringify({ vip: true }),
  });
  assert.equal(patched.status, 200);
  await page.waitForSelector(`#changes li[data-collection=customers][data-operation=update][data-id="${id}"]`, { timeout: 10_000 });

  if (SCREENSHOTS) {
    // A few seconds of traffic, so the chart in the picture has something to show.
    for (let i = 0; i < 60; i++) {
      await Promise.all(Array.from({ length: 1 + (i % 12) }, (_, n) => client.invoke("SendToGroup", "app:room-1", { i, n })));
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.screenshot({ path: "docs/console-desktop.png", fullPage: true });
  }

  // Edit in the browser (PUT with If-Match), then delete: a second press confirms.
  await page.click(`#items button[aria-label="Edit ${id}"]`);
  assert.equal(await page.evaluate(() => document.activeElement.id), "item-json");
  await page.fill("#item-json", JSON.stringify({ name: "Renamed", vip: true }));
  await page.click("#item-save");
  await page.waitForFunction(() => /^Saved /.test(document.querySelector("#item-form .result").textContent));
  await page.waitForFunction((itemId) => document.querySelector(`#items tr[data-id="${itemId}"]`)?.textContent.includes("Renamed"), id);
  await page.click(`#items button[aria-label="Delete ${id}"]`);
  assert.equal(await rowCount(page, `#items tr[data-id="${id}"]`), 1, "one press does not delete");
  await page.click(`#items button[aria-label="Confirm: delete ${id}"]`);
  await page.waitForSelector(`#changes li[data-collection=customers][data-operation=delete][data-id="${id}"]`, { timeout: 10_000 });
  await page.waitForSelector(`#items tr[data-id="${id}"]`, { state: "detached" });

  assert.deepEqual(pageErrors, []);
  await page.context().close();
});

test("the console is readable at phone width and keeps the session on reload", async () => {
  const page = await openConsole({ width: 390, height: 844 });
  await signIn(page, SERVER_KEY);
  await page.waitForSelector("#console[data-hub=connected]");
  await page.reload();
  await page.waitForSelector("#console:not([hidden])");
  // One column: nothing wider than the screen.
  const { overflow, wide } = await page.evaluate(() => ({
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    // What sticks out, outside the horizontally scrolled tables (for the failure message).
    wide: [...document.querySelectorAll("body *")]
      .filter((e) => !e.closest(".scroll") && e.getBoundingClientRect().right > window.innerWidth + 1)
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`),
  }));
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than the phone: ${wide.join(", ")}`);
  if (SCREENSHOTS) {
    await page.waitForTimeout(2000);
    await page.screenshot({ path: "docs/console-phone.png", fullPage: false });
  }
  assert.deepEqual(pageErrors, []);
  await page.context().close();
});

test("a service account signs in; a client's key is told apart from a wrong one", async () => {
  const CLIENT_KEY = "console-client-key-0123456789";
  const configured = await startServer([], {
    config: '[[api_keys]]\nkey = "console-client-key-0123456789"\nrole = "client"\n\n' +
      '[[service_accounts]]\nclient_id = "ops"\nclient_secret = "console-secret-0123456789"\n\n' +
      '[auth]\njwt_secret = "console-browser-jwt-secret-0123456789"\n',
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${configured.origin}/_console`);

    await signIn(page, CLIENT_KEY);
    await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
    assert.match(await page.textContent("#login-error"), /not the server's/);
    assert.equal(await page.isHidden("#console"), true);

    await page.check("input[name=authority][value=serviceaccount]");
    await page.fill("#client-id", "ops");
    await page.fill("#client-secret", "wrong-secret");
    await page.press("#client-secret", "Enter");
    await page.waitForFunction(() => /Invalid client id or secret/.test(document.getElementById("login-error").textContent));
    assert.equal(await page.isHidden("#console"), true);

    await page.fill("#client-secret", "console-secret-0123456789");
    await page.press("#client-secret", "Enter");
    await page.waitForSelector("#console[data-hub=connected]");
    // The console's own connection is listed, as the server identity's.
    await page.waitForFunction(() => [...document.querySelectorAll("#connections tbody tr")].some((tr) => tr.textContent.includes("(server)")));
    const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem("rthub.console.credential")));
    assert.equal(stored.kind, "bearer");
    assert.deepEqual(pageErrors, []);
    await context.close();
  } finally {
    await configured.stop();
  }
});
