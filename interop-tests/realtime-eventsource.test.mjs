// /realtime with the `eventsource` package (the WHATWG EventSource for Node): RestDB.io's
// typed events (post, put, delete, publish) through addEventListener, who sees what (server
// key, key lists, JWT users' LISTEN rules, `global`), POST /realtime's rules, and resuming with
// Last-Event-ID after a dropped connection and after a server restart on the same database.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { rmSync } from "node:fs";
import { EventSource } from "eventsource";
import { startServer, waitFor, SERVER_KEY, tempDir } from "./helpers/server.mjs";
import { SCHEMA, KEYS, config, jwt, rest, create, publish } from "./helpers/realtime.mjs";

const TYPES = ["post", "put", "delete", "publish", "reload"];
const open = new Set();

/**
 * An EventSource on `server`'s /realtime. `headers` are added to every request (the package's
 * `fetch` option); `lastEventId` is sent as Last-Event-ID on the first request (on reconnects
 * the package sends its own). Collects typed events as { type, id, data } in `events`.
 */
function stream(server, { query = "", headers = {}, lastEventId, url } = {}) {
  const first = lastEventId === undefined ? {} : { "Last-Event-ID": lastEventId };
  let requests = 0;
  const es = new EventSource(url ?? `${server.origin}/realtime${query}`, {
    fetch: (input, init) => {
      requests += 1;
      const extra = requests === 1 ? { ...headers, ...first } : headers;
      return fetch(input, { ...init, headers: { ...extra, ...init.headers } });
    },
  });
  open.add(es);
  const s = { es, events: [], pings: [], greetings: 0, errors: [] };
  es.addEventListener("ping", (e) => s.pings.push(e.data));
  es.addEventListener("message", (e) => {
    assert.deepEqual(JSON.parse(e.data), { channel: "init", data: {} });
    s.greetings += 1;
  });
  for (const type of TYPES) {
    es.addEventListener(type, (e) => s.events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) }));
  }
  es.addEventListener("error", (e) => s.errors.push(e.code ?? e.message));
  s.ready = () => waitFor(() => s.greetings >= 1, "the init greeting", 10_000, () => `errors: ${s.errors}`);
  s.close = () => { es.close(); open.delete(es); };
  s.waitFor = (predicate, what) => waitFor(() => predicate(s.events), what, 10_000,
    () => `got ${JSON.stringify(s.events).slice(-800)}; errors: ${s.errors}`);
  return s;
}

const opened = async (server, options) => { const s = stream(server, options); await s.ready(); return s; };
const closeAll = () => { for (const es of open) es.close(); open.clear(); };
const brief = (e) => (e.type === "publish" ? `publish:${e.data.event}:${JSON.stringify(e.data.data)}`
  : `${e.type}:${e.data.collection}:${e.type === "post" ? e.data.data.name ?? e.data.data.note : JSON.stringify(e.data.data)}`);

const REALTIME = { max_event_bytes: 1024, retry_ms: 200 };

describe("/realtime", () => {
  let server;
  before(async () => { server = await startServer([], { schema: SCHEMA, config: config({ realtime: REALTIME }) }); });
  after(async () => { closeAll(); await server?.stop(); });

  test("post, put (PUT and PATCH) and delete arrive with RestDB's shapes", async () => {
    const s = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    const created = await create(server, "customers", { name: "Ada" });
    const [putStatus] = await rest(server, "PUT", `/api/customers/${created.id}`, { name: "Ada L.", vip: true });
    const [patchStatus] = await rest(server, "PATCH", `/api/customers/${created.id}`, { vip: false });
    const [deleteStatus] = await rest(server, "DELETE", `/api/customers/${created.id}`);
    assert.deepEqual([putStatus, patchStatus, deleteStatus], [200, 200, 200]);
    await s.waitFor((events) => events.length >= 4, "four database events");
    assert.deepEqual(s.events.map((e) => e.type), ["post", "put", "put", "delete"]);
    const [post, put, patch, del] = s.events;
    assert.deepEqual(Object.keys(post.data).sort(), ["collection", "data", "event", "ts"]);
    assert.deepEqual(post.data.data, { _id: created.id, ...created });
    for (const [e, type, data] of [[post, "post"], [put, "put", created.id], [patch, "put", created.id], [del, "delete", [created.id]]]) {
      assert.equal(e.data.event, type);
      assert.equal(e.data.collection, "customers");
      if (data !== undefined) assert.deepEqual(e.data.data, data);
      assert.ok(!Number.isNaN(Date.parse(e.data.ts)), e.data.ts);
      assert.match(e.id, /^\d+$/);
    }
    const ids = s.events.map((e) => Number(e.id));
    assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `increasing ids ${ids}`);
    s.close();
  });

  test("a custom event arrives as a publish event", async () => {
    const s = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    assert.deepEqual(await publish(server, { event: "GOAL", data: { team: "home", minute: 12 } }), [200, { message: "OK" }]);
    await s.waitFor((events) => events.length >= 1, "the custom event");
    assert.equal(s.events.length, 1);
    const [e] = s.events;
    assert.equal(e.type, "publish");
    assert.match(e.id, /^\d+-\d+$/);
    assert.deepEqual(e.data, { event: "GOAL", data: { team: "home", minute: 12 } });
    s.close();
  });

  test("who sees what: server key, key lists and JWT users' LISTEN rules", async () => {
    const streams = {
      server: await opened(server, { query: `?apikey=${SERVER_KEY}` }),
      postCustomers: await opened(server, { headers: { "x-apikey": KEYS.postCustomers.key } }),
      allCustomers: await opened(server, { query: `?apikey=${KEYS.allCustomers.key}` }),
      putCustomers: await opened(server, { headers: { "x-apikey": KEYS.putCustomers.key } }),
      deleteOrders: await opened(server, { headers: { "x-apikey": KEYS.deleteOrders.key } }),
      postAll: await opened(server, { headers: { "x-apikey": KEYS.postAll.key } }),
      goal: await opened(server, { headers: { "x-apikey": KEYS.goal.key } }),
      everything: await opened(server, { headers: { "x-apikey": KEYS.everything.key } }),
      sales: await opened(server, { headers: { authorization: `Bearer ${jwt("sam", ["sales"])}` } }),
      salesQuery: await opened(server, { query: `?access_token=${jwt("sue", ["sales"])}` }),
      opsJwtQuery: await opened(server, { query: `?jwt=${jwt("oli", ["ops"])}` }),
    };
    const c = await create(server, "customers", { name: "c1" });
    await rest(server, "PUT", `/api/customers/${c.id}`, { name: "c1" });
    await rest(server, "PATCH", `/api/customers/${c.id}`, { vip: true });
    const o = await create(server, "orders", { total: 5, note: "o1" });
    await rest(server, "PATCH", `/api/orders/${o.id}`, { total: 6 });
    await rest(server, "DELETE", `/api/orders/${o.id}`);
    await rest(server, "DELETE", `/api/customers/${c.id}`);
    assert.equal((await publish(server, { event: "GOAL", data: 1 }))[0], 200);
    assert.equal((await publish(server, { event: "OTHER", data: 2 }))[0], 200);
    // Every write reached the router (the server key's stream sees all, and a write goes to
    // every stream's queue at once), so a fence written now reaches a stream after whatever
    // else it was going to get. Fences (events on fence items) are left out of the comparison.
    await streams.server.waitFor((events) => events.length >= 9, "the nine events on the server key's stream");
    const fenceIds = new Set();
    const fenceItem = async (collection, item) => { const made = await create(server, collection, item); fenceIds.add(made.id); return made; };
    const isFence = (e) => e.type === "publish" ? e.data.data === "fence"
      : e.type === "post" ? fenceIds.has(e.data.data._id) : fenceIds.has([e.data.data].flat()[0]);
    const postCustomer = async () => (await fenceItem("customers", { name: "fence" })).id;
    const fences = {
      server: postCustomer,
      postCustomers: postCustomer,
      allCustomers: postCustomer,
      putCustomers: async () => { const f = await fenceItem("customers", { name: "fence" }); await rest(server, "PATCH", `/api/customers/${f.id}`, { vip: true }); return f.id; },
      deleteOrders: async () => { const f = await fenceItem("orders", { note: "fence" }); await rest(server, "DELETE", `/api/orders/${f.id}`); return f.id; },
      postAll: async () => (await fenceItem("orders", { note: "fence" })).id,
      goal: async () => { assert.equal((await publish(server, { event: "GOAL", data: "fence" }))[0], 200); return "GOAL"; },
      everything: postCustomer,
      sales: postCustomer,
      salesQuery: postCustomer,
      opsJwtQuery: async () => (await fenceItem("orders", { note: "fence" })).id,
    };
    const everyDb = ["post:customers:c1", `put:customers:"${c.id}"`, `put:customers:"${c.id}"`,
      "post:orders:o1", `put:orders:"${o.id}"`, `delete:orders:["${o.id}"]`, `delete:customers:["${c.id}"]`];
    const customersDb = everyDb.filter((e) => e.includes(":customers:"));
    const ordersDb = everyDb.filter((e) => e.includes(":orders:"));
    const expected = {
      server: [...everyDb, "publish:GOAL:1", "publish:OTHER:2"],
      postCustomers: ["post:customers:c1"],
      allCustomers: customersDb,
      putCustomers: [`put:customers:"${c.id}"`, `put:customers:"${c.id}"`],
      deleteOrders: [`delete:orders:["${o.id}"]`],
      postAll: ["post:customers:c1", "post:orders:o1"],
      goal: ["publish:GOAL:1"],
      everything: [...everyDb, "publish:GOAL:1", "publish:OTHER:2"],
      sales: customersDb,
      salesQuery: customersDb,
      opsJwtQuery: ordersDb,
    };
    for (const [name, s] of Object.entries(streams)) {
      const fence = await fences[name]();
      await s.waitFor((events) => events.some((e) => isFence(e) && (e.type === "publish" ? e.data.event === fence
        : [e.data.data._id ?? e.data.data].flat()[0] === fence)), `${name}: its fence`);
      // Custom and database events travel separately: compare each kind in order.
      const got = s.events.filter((e) => !isFence(e)).map(brief);
      assert.deepEqual(got.filter((e) => !e.startsWith("publish")), expected[name].filter((e) => !e.startsWith("publish")), name);
      assert.deepEqual(got.filter((e) => e.startsWith("publish")), expected[name].filter((e) => e.startsWith("publish")), name);
      s.close();
    }
  });

  test("the stream's first bytes: a comment, retry, RestDB's init greeting", async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.origin}/realtime`, { headers: { "x-apikey": SERVER_KEY }, signal: controller.signal });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/event-stream/);
    assert.equal(response.headers.get("cache-control"), "no-cache");
    const opening = ': rthub realtime\n\nretry: 200\n\ndata: {"channel":"init","data":{}}\n\n';
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (text.length < opening.length) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert.equal(text, opening);
    controller.abort();
  });

  test("no rights: 401 without credentials, 403 with credentials that see nothing, before any stream", async () => {
    const cases = [
      ["no credentials", {}, "", 401, "unauthorized"],
      ["an unknown key", { "x-apikey": "not-a-key-of-this-server-000" }, "", 401, "unauthorized"],
      ["a client key with no realtime entries", { "x-apikey": KEYS.none.key }, "", 403, "forbidden"],
      ["the same key in the query", {}, `?apikey=${KEYS.none.key}`, 403, "forbidden"],
      ["a user whose roles no LISTEN rule admits", { authorization: `Bearer ${jwt("nobody", ["guest"])}` }, "", 403, "forbidden"],
    ];
    for (const [what, headers, query, status, code] of cases) {
      const response = await fetch(`${server.origin}/realtime${query}`, { headers: { accept: "text/event-stream", ...headers } });
      assert.equal(response.status, status, what);
      assert.match(response.headers.get("content-type") ?? "", /^application\/json/, what);
      const body = await response.json();
      assert.equal(body.error.code, code, what);
      assert.equal(typeof body.error.message, "string", what);
    }
    // The EventSource itself gives up with the status (no stream, no greeting).
    const s = stream(server, { headers: { "x-apikey": KEYS.none.key } });
    await waitFor(() => s.es.readyState === EventSource.CLOSED, "the EventSource to fail");
    assert.deepEqual([s.greetings, s.events.length, s.errors], [0, 0, [403]]);
    s.close();
  });

  test("POST /realtime: who may publish, names, fields and size; refused events are not sent", async () => {
    const watch = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    const ok = [200, { message: "OK" }];
    const status = async (body, key) => (await publish(server, body, key))[0];
    assert.deepEqual(await publish(server, { event: "P1", data: { by: "server" } }), ok);
    assert.deepEqual(await publish(server, { event: "GOAL", data: "goal key" }, KEYS.goal.key), ok);
    assert.deepEqual(await publish(server, { event: "P2", data: "events key" }, KEYS.eventsAll.key), ok);
    assert.deepEqual(await publish(server, { event: "P3", data: "star key" }, KEYS.everything.key), ok);
    assert.deepEqual(await publish(server, { event: "a-b_c.d:E9", data: null }), ok);
    assert.deepEqual(await publish(server, { event: "N".repeat(128), data: [] }), ok);
    assert.deepEqual(await publish(server, { event: "BIG", data: "x".repeat(1000) }), ok);
    const refused = [
      [{ event: "OTHER", data: 1 }, KEYS.goal.key, 403],
      [{ event: "GOAL", data: 1 }, KEYS.postCustomers.key, 403],
      [{ event: "GOAL", data: 1 }, KEYS.none.key, 403],
      [{ event: "GOAL", data: 1 }, null, 401],
      [{ event: "bad name", data: 1 }, SERVER_KEY, 400],
      [{ event: "", data: 1 }, SERVER_KEY, 400],
      [{ event: "N".repeat(129), data: 1 }, SERVER_KEY, 400],
      [{ event: "gòal", data: 1 }, SERVER_KEY, 400],
      ...["post", "put", "delete", "ping", "publish", "init", "reload", "POST", "Reload"]
        .map((event) => [{ event, data: 1 }, SERVER_KEY, 400]),
      [{ event: "GOAL" }, SERVER_KEY, 400],
      [{ data: 1 }, SERVER_KEY, 400],
      [{ event: "GOAL", data: 1, extra: true }, SERVER_KEY, 400],
      [{ event: 7, data: 1 }, SERVER_KEY, 400],
      ["not json", SERVER_KEY, 400],
      [{ event: "GOAL", data: "x".repeat(1100) }, SERVER_KEY, 413],
      [{ event: "GOAL", data: "x".repeat(100_000) }, SERVER_KEY, 413],
    ];
    for (const [body, key, expected] of refused) {
      const [got, reply] = await publish(server, body, key);
      assert.equal(got, expected, `${JSON.stringify(body).slice(0, 80)} with ${key}: ${JSON.stringify(reply)}`);
      assert.equal(typeof reply.error?.code, "string", JSON.stringify(reply));
    }
    // A user token (no key) may not publish either.
    const [userStatus] = await rest(server, "POST", "/realtime", { event: "GOAL", data: 1 }, { authorization: `Bearer ${jwt("sam", ["sales"])}` });
    assert.equal(userStatus, 403);
    assert.equal(await status({ event: "FENCE", data: 0 }), 200);
    await watch.waitFor((events) => events.some((e) => e.data.event === "FENCE"), "the fence");
    assert.deepEqual(watch.events.map((e) => e.data.event),
      ["P1", "GOAL", "P2", "P3", "a-b_c.d:E9", "N".repeat(128), "BIG", "FENCE"]);
    assert.deepEqual(watch.events[0].data.data, { by: "server" });
    watch.close();
  });

  test("Last-Event-ID after a dropped connection: exactly the missed events, in order, then live", async () => {
    const headers = { "x-apikey": KEYS.everything.key };
    const watch = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    const first = await opened(server, { headers });
    await create(server, "customers", { name: "r1" });
    await create(server, "orders", { note: "r2" });
    await first.waitFor((events) => events.length >= 2, "the first two");
    const last = first.events.at(-1).id;
    first.close();
    const missed = [await create(server, "customers", { name: "m1" })];
    missed.push((await rest(server, "PATCH", `/api/customers/${missed[0].id}`, { vip: true }))[1]);
    missed.push(await create(server, "orders", { note: "m3" }));
    // Published once the writes are delivered, so its id sorts after theirs.
    await watch.waitFor((events) => events.some((e) => e.data.data?.note === "m3"), "the missed writes delivered");
    assert.equal((await publish(server, { event: "MISSED", data: 4 }))[0], 200);
    const resumed = await opened(server, { headers, lastEventId: last });
    await create(server, "customers", { name: "live" });
    await resumed.waitFor((events) => events.some((e) => e.data.data?.name === "live"), "the live event");
    assert.deepEqual(resumed.events.map(brief),
      ["post:customers:m1", `put:customers:"${missed[0].id}"`, "post:orders:m3", "publish:MISSED:4", "post:customers:live"]);
    const ids = resumed.events.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, `no id twice: ${ids}`);
    assert.ok(Number(ids[0]) > Number(last));
    // A restricted key resumes with only what it may see.
    const narrow = await opened(server, { headers: { "x-apikey": KEYS.postCustomers.key }, lastEventId: last });
    await create(server, "customers", { name: "live2" });
    await narrow.waitFor((events) => events.some((e) => e.data.data?.name === "live2"), "live2");
    assert.deepEqual(narrow.events.map(brief), ["post:customers:m1", "post:customers:live", "post:customers:live2"]);
    // The id may come in the query too (`lastEventId`), for clients that cannot set headers.
    const byQuery = await opened(server, { query: `?apikey=${KEYS.postCustomers.key}&lastEventId=${last}` });
    await byQuery.waitFor((events) => events.some((e) => e.data.data?.name === "live2"), "live2 by query");
    assert.deepEqual(byQuery.events.map(brief), ["post:customers:m1", "post:customers:live", "post:customers:live2"]);
    byQuery.close();
    // Resuming from a custom event's id: what came after it only.
    const afterCustom = await opened(server, { headers, lastEventId: resumed.events[3].id });
    await create(server, "orders", { note: "live3" });
    await afterCustom.waitFor((events) => events.some((e) => e.data.data?.note === "live3"), "live3");
    assert.deepEqual(afterCustom.events.map(brief), ["post:customers:live", "post:customers:live2", "post:orders:live3"]);
    for (const s of [watch, resumed, narrow, afterCustom]) s.close();
  });

  test("a Last-Event-ID that cannot be resumed: reload for one ahead of the stream, 400 for garbage", async () => {
    const ahead = await opened(server, { headers: { "x-apikey": SERVER_KEY }, lastEventId: "999999999" });
    await ahead.waitFor((events) => events.length >= 1, "reload");
    assert.equal(ahead.events[0].type, "reload");
    assert.equal(ahead.events[0].data.lastEventId, "999999999");
    assert.equal(typeof ahead.events[0].data.reason, "string");
    ahead.close();
    const response = await fetch(`${server.origin}/realtime`, { headers: { "x-apikey": SERVER_KEY, "last-event-id": "not-an-id" } });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error.code, "bad_request");
  });
});

describe("/realtime with global = true", () => {
  let server;
  before(async () => { server = await startServer([], { schema: SCHEMA, config: config({ realtime: { ...REALTIME, global: true, ping_secs: 1, max_replay_events: 3 } }) }); });
  after(async () => { closeAll(); await server?.stop(); });

  test("any valid key sees everything and may publish any name", async () => {
    const s = await opened(server, { headers: { "x-apikey": KEYS.postOrders.key } });
    const none = await opened(server, { query: `?apikey=${KEYS.none.key}` });
    const c = await create(server, "customers", { name: "g1" });
    await rest(server, "PATCH", `/api/customers/${c.id}`, { vip: true });
    await rest(server, "DELETE", `/api/customers/${c.id}`);
    await create(server, "orders", { note: "g2" });
    await s.waitFor((events) => events.length >= 4, "the database events");
    assert.deepEqual(await publish(server, { event: "ANY", data: 1 }, KEYS.postOrders.key), [200, { message: "OK" }]);
    assert.deepEqual(await publish(server, { event: "OTHER", data: 2 }, KEYS.none.key), [200, { message: "OK" }]);
    const expected = ["post:customers:g1", `put:customers:"${c.id}"`, `delete:customers:["${c.id}"]`, "post:orders:g2", "publish:ANY:1", "publish:OTHER:2"];
    for (const stream of [s, none]) {
      await stream.waitFor((events) => events.length >= 6, "six events");
      assert.deepEqual(stream.events.map(brief), expected);
    }
    // Still no stream without a valid key.
    assert.equal((await fetch(`${server.origin}/realtime`)).status, 401);
    assert.equal((await publish(server, { event: "ANY", data: 1 }, null))[0], 401);
    s.close();
    none.close();
  });
  test("pings every ping_secs, with the server's time", async () => {
    const s = await opened(server, { headers: { "x-apikey": KEYS.none.key } });
    await waitFor(() => s.pings.length >= 2, "two pings", 5_000);
    for (const ping of s.pings) {
      assert.match(ping, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
      assert.ok(Math.abs(Date.parse(ping) - Date.now()) < 60_000, ping);
    }
    assert.equal(s.events.length, 0, "pings are not events");
    s.close();
  });

  test("more missed events than max_replay_events: reload, then live", async () => {
    const headers = { "x-apikey": SERVER_KEY };
    const first = await opened(server, { headers });
    await create(server, "orders", { note: "seen" });
    await first.waitFor((events) => events.length >= 1, "the first write");
    const last = first.events[0].id;
    first.close();
    // A stream that stays shows when the change feed has delivered the four: a stream opened
    // before that would get the rest live, rightly, instead of the reload this test is about.
    const watcher = await opened(server, { headers });
    for (let i = 0; i < 4; i++) await create(server, "orders", { note: `missed ${i}` });
    await watcher.waitFor((events) => events.length >= 4, "the four writes delivered");
    watcher.close();
    const resumed = await opened(server, { headers, lastEventId: last });
    await resumed.waitFor((events) => events.length >= 1, "reload");
    assert.equal(resumed.events[0].type, "reload");
    assert.equal(resumed.events[0].data.lastEventId, last);
    await create(server, "orders", { note: "after" });
    await resumed.waitFor((events) => events.length >= 2, "the live write");
    assert.deepEqual(resumed.events.slice(1).map(brief), ["post:orders:after"]);
    // Three missed are still replayed.
    const near = await opened(server, { headers, lastEventId: String(Number(resumed.events[1].id) - 3) });
    await near.waitFor((events) => events.length >= 3, "three replayed");
    assert.deepEqual(near.events.map(brief), ["post:orders:missed 2", "post:orders:missed 3", "post:orders:after"]);
    resumed.close();
    near.close();
  });
});

describe("/realtime across a server restart on the same SQLite database", () => {
  let dir, server;
  const start = (port) => startServer([], { schema: SCHEMA, config: config({ realtime: REALTIME }), database: join(dir, "rt.db"), port });
  before(async () => { dir = tempDir(); server = await start(); });
  after(async () => { closeAll(); await server?.stop(); rmSync(dir, { recursive: true, force: true }); });

  test("resume after a restart: the database events are all there, a custom event's id gets reload", async () => {
    const headers = { "x-apikey": SERVER_KEY };
    const first = await opened(server, { headers });
    await create(server, "customers", { name: "before" });
    await first.waitFor((events) => events.length >= 1, "the first write");
    const lastDb = first.events[0].id;
    first.close();
    // Missed before the restart, and during it.
    await create(server, "orders", { note: "missed-before-stop" });
    const custom = await opened(server, { headers, lastEventId: lastDb });
    await custom.waitFor((events) => events.length >= 1, "the missed write");
    assert.equal((await publish(server, { event: "GOAL", data: "old run" }))[0], 200);
    await custom.waitFor((events) => events.length >= 2, "the custom event");
    const customId = custom.events[1].id;
    assert.match(customId, /^\d+-\d+$/);
    custom.close();
    await server.stop();
    server = await start();
    await create(server, "customers", { name: "after-restart" });
    const resumed = await opened(server, { headers, lastEventId: lastDb });
    await resumed.waitFor((events) => events.length >= 2, "the missed writes");
    assert.deepEqual(resumed.events.map(brief), ["post:orders:missed-before-stop", "post:customers:after-restart"]);
    assert.ok(Number(resumed.events[0].id) > Number(lastDb));
    const stale = await opened(server, { headers, lastEventId: customId });
    await stale.waitFor((events) => events.length >= 1, "reload");
    assert.equal(stale.events[0].type, "reload");
    assert.deepEqual(Object.keys(stale.events[0].data).sort(), ["lastEventId", "reason"]);
    assert.equal(stale.events[0].data.lastEventId, customId);
    // After the reload the stream goes on live.
    await create(server, "orders", { note: "live" });
    await stale.waitFor((events) => events.length >= 2, "the live write");
    assert.deepEqual(stale.events.slice(1).map(brief), ["post:orders:live"]);
    resumed.close();
    stale.close();
  });

  test("an open EventSource reconnects by itself to the restarted server with nothing lost", async () => {
    const s = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    await create(server, "customers", { name: "k1" });
    await s.waitFor((events) => events.length >= 1, "k1");
    const port = server.port;
    await server.stop();
    server = await start(port);
    await create(server, "customers", { name: "k2" });
    await create(server, "orders", { note: "k3" });
    await s.waitFor((events) => events.length >= 3, "k2 and k3 after the reconnect");
    assert.ok(s.greetings >= 2, "a second greeting: it reconnected");
    assert.deepEqual(s.events.map(brief), ["post:customers:k1", "post:customers:k2", "post:orders:k3"]);
    s.close();
  });
});

describe("/realtime and shutting down", () => {
  test("SIGTERM ends the process promptly while a /realtime stream is open", async () => {
    const server = await startServer([], { schema: SCHEMA, config: config({ realtime: REALTIME }) });
    const s = await opened(server, { headers: { "x-apikey": SERVER_KEY } });
    const started = Date.now();
    await server.stop(); // SIGTERM, then SIGKILL after 5 s
    s.close();
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 4_000, `the process took ${elapsed} ms to stop (SIGKILL after 5 s)`);
  });
});

describe("/realtime when custom events pass event_retention_secs", () => {
  let server;
  before(async () => { server = await startServer([], { schema: SCHEMA, config: config({ realtime: { ...REALTIME, event_retention_secs: 1 } }) }); });
  after(async () => { closeAll(); await server?.stop(); });

  test("a stream that may see custom events is told to reload once they are gone", async () => {
    const headers = { "x-apikey": KEYS.everything.key };
    const first = await opened(server, { headers });
    await create(server, "customers", { name: "seen" });
    await first.waitFor((events) => events.length >= 1, "the first write");
    const last = first.events[0].id;
    first.close();
    assert.equal((await publish(server, { event: "GONE", data: 1 }))[0], 200);
    await new Promise((r) => setTimeout(r, 1_100)); // past the retention: the next publish drops GONE
    assert.equal((await publish(server, { event: "KEPT", data: 2 }))[0], 200);
    const resumed = await opened(server, { headers, lastEventId: last });
    await resumed.waitFor((events) => events.length >= 1, "reload");
    assert.equal(resumed.events[0].type, "reload");
    assert.equal(resumed.events[0].data.lastEventId, last);
    resumed.close();
  });

  test("a stream that may see no custom events still resumes its database events", async () => {
    const headers = { "x-apikey": KEYS.postCustomers.key };
    const first = await opened(server, { headers });
    await create(server, "customers", { name: "seen" });
    await first.waitFor((events) => events.length >= 1, "the first write");
    const last = first.events[0].id;
    first.close();
    const missed = await create(server, "customers", { name: "missed" });
    assert.equal((await publish(server, { event: "GONE", data: 1 }))[0], 200);
    await new Promise((r) => setTimeout(r, 1_100)); // past the retention: the next publish drops GONE
    assert.equal((await publish(server, { event: "KEPT", data: 2 }))[0], 200);
    const resumed = await opened(server, { headers, lastEventId: last });
    await resumed.waitFor((events) => events.length >= 1, "the missed write");
    assert.deepEqual(resumed.events.map(brief), ["post:customers:missed"], `the missed post ${missed.id}, no reload`);
    resumed.close();
  });
});
