// The "done when": a chat written for Azure Web PubSub (examples/azure-chat/server.mjs:
// Express with @azure/web-pubsub and @azure/web-pubsub-express, clients with
// @azure/web-pubsub-client) runs against rthub with only its connection string changed, and
// its messages reach SignalR members of the same channel.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { WebPubSubClient } from "@azure/web-pubsub-client";
import { startWpsServer, signalrClient, waitFor, withTimeout, KEEPALIVE, WPS_KEY } from "./helpers/webpubsub.mjs";

let rthub;
let chat;
const clients = [];

/** A free loopback port: the chat's address goes into rthub's config before either starts. */
const freePort = () => new Promise((resolve, reject) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
  probe.on("error", reject);
});

function startChat(port, connectionString) {
  const child = spawn(process.execPath, ["examples/azure-chat/server.mjs"], {
    env: { ...process.env, PORT: String(port), WebPubSubConnectionString: connectionString },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the chat did not start: ${out}`)), 30_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (/chat listening on/.test(out)) { clearTimeout(timer); resolve(child); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`the chat exited (${code}): ${out}`)); });
  });
}

before(async () => {
  const port = await freePort();
  rthub = await startWpsServer({ webpubsub: { hub: "chat", event_handler: `http://127.0.0.1:${port}/eventhandler/` } });
  // The one line an Azure app changes: its connection string.
  chat = await startChat(port, `Endpoint=${rthub.origin};AccessKey=${WPS_KEY};Version=1.0;`);
  chat.origin = `http://127.0.0.1:${port}`;
});

after(async () => {
  for (const c of clients) c.stop();
  chat?.kill();
  await rthub?.stop();
});

/** A chat user as the tutorial's page does it: URL from /negotiate, messages recorded. */
async function join(name) {
  const client = new WebPubSubClient({
    getClientAccessUrl: async () => (await (await fetch(`${chat.origin}/negotiate?id=${name}`)).json()).url,
  }, KEEPALIVE);
  const messages = [];
  client.on("group-message", (e) => messages.push(e.message));
  const connected = new Promise((resolve) => client.on("connected", resolve));
  await withTimeout(client.start(), `${name}: start()`);
  await withTimeout(connected, `${name}: connected`);
  clients.push(client);
  return { client, messages };
}

test("the Azure chat sample runs against rthub and mixes with SignalR in the lobby", async () => {
  const ada = await join("ada");
  const bob = await join("bob");
  const signalr = await signalrClient(rthub);
  const seen = [];
  signalr.on("message", (m) => seen.push(m));
  await signalr.invoke("JoinGroup", "app:lobby");

  // A chat line goes to the app's event handler, which broadcasts it to the lobby.
  const ack = await withTimeout(ada.client.sendEvent("message", "hello from ada", "text"), "sendEvent");
  assert.equal(ack.isDuplicated, false);
  for (const [who, { messages }] of [["ada", ada], ["bob", bob]]) {
    await waitFor(() => messages.some((m) => m.data?.text === "hello from ada"), `${who} gets the broadcast`, 10_000);
    const message = messages.find((m) => m.data?.text === "hello from ada");
    assert.deepEqual({ group: message.group, dataType: message.dataType, data: message.data },
      { group: "app:lobby", dataType: "json", data: { from: "ada", text: "hello from ada" } });
  }
  await waitFor(() => seen.some((m) => m.data?.text === "hello from ada"), "the SignalR member gets it", 10_000);
  assert.equal(seen.find((m) => m.data?.text === "hello from ada").group, "app:lobby");

  // The token's role lets a user send to the lobby directly; SignalR answers in the same channel.
  await withTimeout(bob.client.sendToGroup("app:lobby", "hi all", "text"), "sendToGroup");
  await waitFor(() => seen.some((m) => m.data === "hi all" && m.fromUserId === "bob"), "SignalR gets bob's line", 10_000);
  await signalr.invoke("SendToGroup", "app:lobby", { from: "signalr", text: "hello chat" });
  await waitFor(() => ada.messages.some((m) => m.data?.from === "signalr"), "ada gets the SignalR line", 10_000);
  await signalr.stop();
});
