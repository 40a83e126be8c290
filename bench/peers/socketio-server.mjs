// Socket.IO 4.8 peer. Rooms via "join", fan-out via "publish" (sender excluded),
// "echo" back to the sender, and HTTP `POST /send {"room","data"}` -> room broadcast.
// Usage: PORT=9002 node socketio-server.mjs
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.env.PORT ?? 9002);
const host = "127.0.0.1";

// Socket.IO intercepts /socket.io/ itself; everything else reaches this handler.
const httpServer = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/send") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        body = null;
      }
      if (typeof body !== "object" || body === null || typeof body.room !== "string" || !("data" in body)) {
        res.writeHead(400, { "content-type": "text/plain" }).end("expected {\"room\": string, \"data\": any}\n");
        return;
      }
      io.to(body.room).emit("message", body.data);
      res.writeHead(202).end();
    });
    return;
  }
  res.writeHead(404).end();
});

const io = new Server(httpServer, {
  path: "/socket.io/",
  transports: ["websocket", "polling"],
  perMessageDeflate: false,
  httpCompression: false,
  serveClient: false,
});

io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.join(room);
    socket.emit("joined", room);
  });
  socket.on("publish", (room, data) => {
    socket.to(room).emit("message", data);
  });
  socket.on("echo", (data) => {
    socket.emit("echo", data);
  });
});

httpServer.listen(port, host, () => {
  console.log(`listening on ${host}:${httpServer.address().port}`);
});
