// Collections with @microsoft/signalr: REST writes produce `change` messages with the exact
// payload; id and lookupIds filters; StreamChanges replays from fromSeq then follows live.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, collect, waitFor, sleep, post, signalR } from "./helpers/server.mjs";

let server;
const open = [];
before(async () => { server = await startServer(); });
after(async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  await server.stop();
});
const client = async (options) => { const c = await connect(server, options); open.push(c); return c; };
const rest = async (method, path, body) => {
  const response = await fetch(server.origin + path, {
    method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body),
  });
  return [response.status, await response.json()];
};

for (const [name, transport] of Object.entries({
  WebSockets: signalR.HttpTransportType.WebSockets,
  ServerSentEvents: signalR.HttpTransportType.ServerSentEvents,
  LongPolling: signalR.HttpTransportType.LongPolling,
})) {
  test(`${name}: _listen, then create/update/delete arrive as change messages`, async () => {
    const c = await client({ transport });
    const changes = collect(c, "change");
    const [status, body] = await post(server, "/api/customers/_listen", { connectionId: c.connectionId, type: "signalr" });
    assert.deepEqual([status, body], [200, { listening: true }]);
    const [, created] = await rest("POST", "/api/customers", { name: `Ada ${name}` });
    const [, patched] = await rest("PATCH", `/api/customers/${created.id}`, { vip: true });
    await rest("DELETE", `/api/customers/${created.id}`);
    await waitFor(() => changes.length === 3, "three changes");
    assert.deepEqual(changes.map((ch) => ch.operation), ["create", "update", "delete"]);
    assert.deepEqual(Object.keys(changes[0]).sort(), ["collection", "data", "id", "operation", "seq", "ts"]);
    assert.equal(changes[0].collection, "customers");
    assert.equal(changes[0].id, created.id);
    assert.deepEqual(changes[0].data, created);
    assert.deepEqual(changes[1].data, patched);
    assert.deepEqual(changes[2].data, patched, "the last state on delete");
    assert.ok(changes[1].seq > changes[0].seq && changes[2].seq > changes[1].seq);
    assert.ok(!Number.isNaN(Date.parse(changes[0].ts)));
  });
}

test("Listen with id and lookupIds filters", async () => {
  const [, ann] = await rest("POST", "/api/customers", { name: "Ann" });
  const [, ben] = await rest("POST", "/api/customers", { name: "Ben" });
  // A subscription gets what the feed dispatches after it starts: let the setup writes be
  // dispatched first (seen by a listener) so they are not counted below.
  const sync = await client();
  const synced = collect(sync, "change");
  await sync.invoke("Listen", "orders");
  const [, order] = await rest("POST", "/api/orders", { customer: ann.id, total: 10 });
  await waitFor(() => synced.some((ch) => ch.id === order.id), "the setup write dispatched");
  const byId = await client(), byLookup = await client();
  const idChanges = collect(byId, "change"), lookupChanges = collect(byLookup, "change");
  await byId.invoke("Listen", "orders", { id: order.id });
  await byLookup.invoke("Listen", "orders", { lookupIds: [ben.id] });
  await rest("POST", "/api/orders", { customer: ben.id, total: 1 });
  await rest("PATCH", `/api/orders/${order.id}`, { total: 11 });
  await waitFor(() => lookupChanges.length === 1 && idChanges.length === 1, "filtered changes");
  await sleep(300);
  assert.equal(idChanges.length, 1);
  assert.equal(idChanges[0].id, order.id);
  assert.equal(lookupChanges.length, 1);
  assert.equal(lookupChanges[0].data.customer, ben.id);
  await assert.rejects(byId.invoke("Listen", "nothing"), /nothing/);
});

test("StreamChanges replays after fromSeq, then follows live, with no duplicate", async () => {
  const c = await client();
  const live = collect(c, "change");
  await c.invoke("Listen", "products");
  const [, first] = await rest("POST", "/api/products", { name: "p1", price: 1 });
  await waitFor(() => live.length === 1, "the first change");
  const from = live[0].seq;
  await rest("POST", "/api/products", { name: "p2", price: 2 });
  await rest("POST", "/api/products", { name: "p3", price: 3 });
  const streamed = [];
  let completed = false;
  const subscription = c.stream("StreamChanges", "products", null, from).subscribe({
    next: (change) => { streamed.push(change); },
    complete: () => { completed = true; },
    error: (e) => { throw e; },
  });
  await waitFor(() => streamed.length === 2, "the replay");
  await rest("POST", "/api/products", { name: "p4", price: 4 });
  await waitFor(() => streamed.length === 3, "the live change");
  await sleep(200);
  assert.deepEqual(streamed.map((ch) => ch.data.name), ["p2", "p3", "p4"]);
  assert.ok(streamed.every((ch, i) => i === 0 || ch.seq > streamed[i - 1].seq));
  assert.notEqual(streamed[0].id, first.id);
  subscription.dispose();
  await sleep(100);
  assert.equal(completed, false, "a disposed stream does not complete on the client");
});

test("REST errors are JSON with the product's shape", async () => {
  const [status, body] = await rest("POST", "/api/customers", { vip: "no" });
  assert.equal(status, 400);
  assert.equal(body.error.code, "invalid");
  assert.ok(body.error.details.some((d) => d.field === "name"));
  assert.ok(body.error.details.some((d) => d.field === "vip"));
  const [missing] = await rest("GET", "/api/nothing");
  assert.equal(missing, 404);
});
