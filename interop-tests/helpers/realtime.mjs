// What the /realtime interop tests share: a schema, API keys with `realtime` lists, a config
// file, users' JWTs and the REST calls that make database and custom events.
import { createHmac } from "node:crypto";
import { SERVER_KEY } from "./server.mjs";

export const JWT_SECRET = "realtime-interop-jwt-secret-0123456789";

/** `customers`: LISTEN for role `sales`; `orders`: LISTEN for role `ops`. Anyone may write. */
export const SCHEMA = {
  collections: [
    {
      name: "customers",
      properties: [
        { name: "name", type: "string", required: true, maxLength: 40 },
        { name: "vip", type: "boolean", default: false },
      ],
      access: ["GET", "POST", "PUT", "PATCH", "DELETE"].map((method) => ({ method, roleNames: ["_EVERYONE"] }))
        .concat([{ method: "LISTEN", roleNames: ["sales"] }]),
    },
    {
      name: "orders",
      properties: [{ name: "total", type: "integer" }, { name: "note", type: "string" }],
      access: ["GET", "POST", "PUT", "PATCH", "DELETE"].map((method) => ({ method, roleNames: ["_EVERYONE"] }))
        .concat([{ method: "LISTEN", roleNames: ["ops"] }]),
    },
  ],
};

/** Client keys by what their `realtime` list holds. */
export const KEYS = {
  postCustomers: { key: "rt-client-post-customers-0001", realtime: ["POST:customers"] },
  allCustomers: { key: "rt-client-all-customers-00001", realtime: ["*:customers"] },
  goal: { key: "rt-client-event-goal-0000001", realtime: ["EVENT:GOAL"] },
  eventsAll: { key: "rt-client-event-star-0000001", realtime: ["EVENT:*"] },
  everything: { key: "rt-client-everything-0000001", realtime: ["*"] },
  postOrders: { key: "rt-client-post-orders-000001", realtime: ["POST:orders"] },
  putCustomers: { key: "rt-client-put-customers-00001", realtime: ["PUT:customers"] },
  deleteOrders: { key: "rt-client-delete-orders-00001", realtime: ["DELETE:orders"] },
  postAll: { key: "rt-client-post-star-00000001", realtime: ["POST:*"] },
  none: { key: "rt-client-no-rights-00000001", realtime: [] },
};

/** A config file: the client keys above, the JWT secret and `[realtime]` settings. */
export function config({ realtime = {}, extra = "" } = {}) {
  const toml = (value) => JSON.stringify(value);
  const lines = [extra, "[auth]", `jwt_secret = ${toml(JWT_SECRET)}`, "", "[realtime]"];
  for (const [name, value] of Object.entries(realtime)) lines.push(`${name} = ${toml(value)}`);
  for (const { key, realtime: list } of Object.values(KEYS)) {
    lines.push("", "[[api_keys]]", `key = ${toml(key)}`, 'role = "client"', `realtime = ${toml(list)}`);
  }
  return `${lines.join("\n")}\n`;
}

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An HS256 user token with `roles`. */
export function jwt(sub, roles = []) {
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, roles, exp: Math.floor(Date.now() / 1000) + 600 })}`;
  return `${unsigned}.${createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url")}`;
}

/** A REST call with the server key; resolves to [status, parsed body]. */
export async function rest(server, method, path, body, headers = { "x-apikey": SERVER_KEY }) {
  const response = await fetch(server.origin + path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = text;
  try { parsed = JSON.parse(text); } catch { /* keep the text */ }
  return [response.status, parsed];
}

/** Creates an item, failing unless the server says 201/200; resolves to the item. */
export async function create(server, collection, item) {
  const [status, body] = await rest(server, "POST", `/api/${collection}`, item);
  if (status !== 201 && status !== 200) throw new Error(`POST /api/${collection}: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** POST /realtime with `key` (none: no credentials); resolves to [status, body]. */
export function publish(server, body, key = SERVER_KEY) {
  return rest(server, "POST", "/realtime", body, key ? { "x-apikey": key } : {});
}
