// A chat written for Azure Web PubSub, as its tutorials build one: an Express server with the
// two server SDKs. `@azure/web-pubsub` hands out client URLs (`/negotiate`) and broadcasts;
// `@azure/web-pubsub-express` is the event handler that turns each `message` event into a
// broadcast to the lobby. Nothing here knows rthub: point `WebPubSubConnectionString` at
// rthub (`Endpoint=http://127.0.0.1:8080;AccessKey=<key>;Version=1.0;`) and set rthub's
// `[webpubsub] hub = "chat"` and `event_handler = "http://127.0.0.1:3000/eventhandler/"`.
//
//   WebPubSubConnectionString='Endpoint=…' node examples/azure-chat/server.mjs
//
// Clients: `new WebPubSubClient({ getClientAccessUrl: () => fetch("/negotiate?id=ada")…url })`,
// then `sendEvent("message", text, "text")`; everyone in `app:lobby` gets
// `{ from, text }` as a group message, SignalR members of `app:lobby` included.
import express from "express";
import { WebPubSubServiceClient } from "@azure/web-pubsub";
import { WebPubSubEventHandler } from "@azure/web-pubsub-express";

const hub = "chat";
const lobby = "app:lobby";
const connectionString = process.env.WebPubSubConnectionString;
if (!connectionString) throw new Error("set WebPubSubConnectionString");
// Plain http is for a server on this machine (the SDK refuses it otherwise).
const service = new WebPubSubServiceClient(connectionString, hub, {
  allowInsecureConnection: connectionString.includes("Endpoint=http://"),
});

const handler = new WebPubSubEventHandler(hub, {
  path: "/eventhandler/",
  handleConnect: (req, res) => res.success({ groups: [lobby] }),
  handleUserEvent: async (req, res) => {
    if (req.context.eventName === "message") {
      await service.group(lobby).sendToAll({ from: req.context.userId, text: String(req.data) });
    }
    res.success();
  },
});

const app = express();
app.use(handler.getMiddleware());
app.get("/negotiate", async (req, res) => {
  const id = req.query.id;
  if (!id) return res.status(400).send("missing user id");
  const token = await service.getClientAccessToken({ userId: String(id), roles: [`webpubsub.sendToGroup.${lobby}`] });
  res.json({ url: token.url });
});

const listener = app.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`chat listening on http://127.0.0.1:${listener.address().port}`);
});
