// Several rthub nodes joined through the machine's Redis (a key prefix of their own), behind a
// round-robin HTTP proxy with no sticky sessions: every request and every WebSocket upgrade
// goes to the next node, so a client's negotiate, its socket, its polls and its sends land on
// different nodes, which forward them to the node that has the connection.
import http from "node:http";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { startServer } from "./server.mjs";
import { config } from "./webpubsub.mjs";

export const REDIS_URL = process.env.RTHUB_TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

/**
 * `count` nodes of a fresh cluster, each ready (it reaches Redis). `webpubsub`: settings for
 * `[webpubsub]` (the first server key is its access key on every node, so any node verifies
 * the tokens another issued). Each node gets `node` (its id, from /readyz).
 */
export async function startCluster(count, { webpubsub = {}, args = [] } = {}) {
  const prefix = `test-${randomUUID().replaceAll("-", "")}`;
  const cluster = `[cluster]\nredis = ${JSON.stringify(REDIS_URL)}\nprefix = ${JSON.stringify(prefix)}\n`;
  const text = `${config(webpubsub)}\n${cluster}`;
  const nodes = [];
  try {
    for (let i = 0; i < count; i += 1) nodes.push(await startServer(args, { config: text }));
    for (const node of nodes) {
      const deadline = Date.now() + 10_000;
      let report = null;
      while (report?.status !== "ready") {
        if (Date.now() > deadline) throw new Error(`node ${node.origin} never reached Redis: ${JSON.stringify(report)}`);
        report = await (await fetch(`${node.origin}/readyz`)).json().catch(() => null);
        if (report?.status !== "ready") await new Promise((r) => setTimeout(r, 25));
      }
      node.node = report.cluster.node;
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  // Each node's first heartbeat, with its address, goes out as it starts: a moment for it.
  await new Promise((r) => setTimeout(r, 200));
  return { nodes, prefix, stop: () => Promise.all(nodes.map((n) => n.stop())) };
}

/**
 * An HTTP proxy on a free loopback port that sends each request, and each upgrade, to the
 * next of `nodes` in turn. Bodies stream both ways (an event stream reaches the client event
 * by event). `log` holds `{ node, method, url, upgrade }` for every request (`node`: the
 * index). `cutSockets()` destroys every piped upgrade at once (the client sees its WebSocket
 * drop without a Close, the node its TCP peer go).
 */
export async function startRoundRobinProxy(nodes) {
  let next = 0;
  const pick = () => { const i = next % nodes.length; next += 1; return i; };
  const log = [];
  const sockets = new Set();
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((request, response) => {
    const index = pick();
    const target = new URL(nodes[index].origin);
    log.push({ node: index, method: request.method, url: request.url, upgrade: false });
    const upstream = http.request({
      host: target.hostname,
      port: target.port,
      method: request.method,
      path: request.url,
      headers: request.headers, // Host stays the proxy's: URLs the nodes write name it
      agent,
    }, (answer) => {
      response.writeHead(answer.statusCode, answer.statusMessage, answer.headers);
      response.flushHeaders();
      answer.pipe(response);
    });
    upstream.on("error", (error) => {
      if (!response.headersSent) response.writeHead(502, { "content-type": "text/plain" });
      response.end(`proxy: ${error.message}`);
    });
    // The client went away mid-answer (a closed event stream, an aborted poll): so does the node's.
    response.on("close", () => { if (!response.writableFinished) upstream.destroy(); });
    request.pipe(upstream);
  });
  server.on("upgrade", (request, downstream, head) => {
    const index = pick();
    const target = new URL(nodes[index].origin);
    log.push({ node: index, method: request.method, url: request.url, upgrade: true });
    const upstream = net.connect(Number(target.port), target.hostname);
    const pair = { downstream, upstream };
    sockets.add(pair);
    const drop = () => { sockets.delete(pair); downstream.destroy(); upstream.destroy(); };
    downstream.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    upstream.on("connect", () => {
      const lines = [`${request.method} ${request.url} HTTP/${request.httpVersion}`];
      for (let i = 0; i < request.rawHeaders.length; i += 2) {
        lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`);
      }
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head?.length) upstream.write(head);
      upstream.pipe(downstream);
      downstream.pipe(upstream);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    hubUrl: `http://127.0.0.1:${port}/api/_rt/signalr`,
    log,
    cutSockets() {
      const n = sockets.size;
      for (const { downstream, upstream } of [...sockets]) { downstream.destroy(); upstream.destroy(); }
      sockets.clear();
      return n;
    },
    async close() {
      this.cutSockets();
      agent.destroy();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
