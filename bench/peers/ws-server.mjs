// Plain `ws` peer: fan-out broadcast on "/" (to every other client), echo on "/echo".
// Usage: PORT=9001 node ws-server.mjs
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.env.PORT ?? 9001);
const host = "127.0.0.1";

const server = createServer((req, res) => {
  res.writeHead(404).end();
});

// Two servers sharing one HTTP listener; routed by path on upgrade.
const broadcast = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });

broadcast.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const c of broadcast.clients) {
      if (c !== ws && c.readyState === 1) c.send(data, { binary: isBinary });
    }
  });
});

echo.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});

server.on("upgrade", (req, socket, head) => {
  const path = new URL(req.url, "http://x").pathname;
  const wss = path === "/" ? broadcast : path === "/echo" ? echo : null;
  if (!wss) {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
});

server.listen(port, host, () => {
  console.log(`listening on ${host}:${server.address().port}`);
});
