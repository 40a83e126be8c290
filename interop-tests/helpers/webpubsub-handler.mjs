// An application's Web PubSub event handler: Express with @azure/web-pubsub-express, as its
// README sets it up, for the tests of rthub's upstream events. It reports what it received:
// GET /received is every request's method, path and headers (with whether ce-signature
// matches HMAC-SHA256 of the connection id under ACCESS_KEY, computed here with node:crypto)
// and every event the handler callbacks saw.
//
// Environment: PORT (0: any), HUB (default "app"), ACCESS_KEY. Prints
// `listening on http://127.0.0.1:<port>` once it listens.
//
// Handlers: /eventhandler (allows every origin) and /strict (allowedEndpoints names a host
// that is not rthub, so the abuse-protection check must fail and nothing else arrive).
//
// What the handler does, by what the client sent:
// - connect: a `refuse` query parameter → 401 "not on the list"; an `override` query
//   parameter → userId "override-user", groups ["app:g1", "app:g2"], roles
//   ["webpubsub.joinLeaveGroup"]; else 204. Sets the connection state {seenConnect: true}.
// - user event "echo": answers with the same dataType: json {echo, states}, text
//   "echo: <text>", binary "echo:" + bytes. "count": sets state {count: n+1} and answers
//   text "<n+1>". "silent": success without a body. "fail": 500 "the handler broke".
//   "slow": answers after 3 s.
// - connected/disconnected: recorded.

import crypto from "node:crypto";
import express from "express";
import { WebPubSubEventHandler } from "@azure/web-pubsub-express";

const hub = process.env.HUB ?? "app";
const accessKey = process.env.ACCESS_KEY ?? "";
const requests = [];
const events = [];

function signatureValid(headers) {
  const connectionId = headers["ce-connectionid"];
  const signature = headers["ce-signature"];
  if (!connectionId || !signature || !accessKey) return false;
  const expected =
    "sha256=" + crypto.createHmac("sha256", accessKey).update(connectionId).digest("hex");
  return signature.split(",").some((value) => value.trim() === expected);
}

function contextOf(req) {
  const { connectionId, userId, hub, eventName, origin, states, signature } = req.context;
  return { connectionId, userId, hub, eventName, origin, states, signature };
}

function record(kind, req, extra = {}) {
  events.push({ kind, context: contextOf(req), ...extra });
}

const options = {
  handleConnect(req, res) {
    record("connect", req, {
      claims: req.claims,
      query: req.query,
      headers: req.headers,
      subprotocols: req.subprotocols,
      clientCertificates: req.clientCertificates,
    });
    if (req.query?.refuse) {
      res.fail(401, "not on the list");
      return;
    }
    res.setState("seenConnect", true);
    if (req.query?.override) {
      res.success({
        userId: "override-user",
        groups: ["app:g1", "app:g2"],
        roles: ["webpubsub.joinLeaveGroup"],
      });
      return;
    }
    res.success();
  },
  handleUserEvent(req, res) {
    const data = Buffer.isBuffer(req.data) ? req.data.toString("base64") : req.data;
    record("user", req, { dataType: req.dataType, data });
    const name = req.context.eventName;
    if (name === "fail") {
      res.fail(500, "the handler broke");
    } else if (name === "silent") {
      res.success();
    } else if (name === "slow") {
      setTimeout(() => res.success("late", "text"), 3000);
    } else if (name === "count") {
      const count = (req.context.states.count ?? 0) + 1;
      res.setState("count", count);
      res.success(String(count), "text");
    } else if (req.dataType === "json") {
      res.success(JSON.stringify({ echo: req.data, states: req.context.states }), "json");
    } else if (req.dataType === "text") {
      res.success(`echo: ${req.data}`, "text");
    } else {
      res.success(Buffer.concat([Buffer.from("echo:"), req.data]), "binary");
    }
  },
  onConnected(req) {
    record("connected", req);
  },
  onDisconnected(req) {
    record("disconnected", req, { reason: req.reason });
  },
};

const open = new WebPubSubEventHandler(hub, { ...options, path: "/eventhandler" });
const strict = new WebPubSubEventHandler(hub, {
  ...options,
  path: "/strict",
  allowedEndpoints: ["https://not-rthub.example"],
});

const app = express();
app.use((req, _res, next) => {
  if (req.path !== "/received") {
    requests.push({
      method: req.method,
      path: req.path,
      headers: req.headers,
      signatureValid: signatureValid(req.headers),
    });
  }
  next();
});
app.use(open.getMiddleware());
app.use(strict.getMiddleware());
app.get("/received", (_req, res) => res.json({ requests, events }));

const server = app.listen(Number(process.env.PORT ?? 0), "127.0.0.1", () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
