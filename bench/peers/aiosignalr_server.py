"""aiosignalr 0.1.1 peer: SignalR hub at /hub plus `POST /send` on the same aiohttp app.

Hub methods:
  JoinGroup(group)          -> caller joins `group`
  SendToGroup(group, data)  -> target "message", one argument {"group": group, "data": data},
                               to every member of `group` (sender included if a member)
HTTP:
  POST /send {"group": "...", "data": ...} -> same group send, 202 (bad body -> 400)

Usage: PORT=9003 [MAX_MESSAGE_SIZE=bytes] .venv/bin/python aiosignalr_server.py
"""

from __future__ import annotations

import asyncio
import json
import os

from aiohttp import web
from aiosignalr.server import Hub, ServerOptions, SignalRServer

HOST = "127.0.0.1"


class BenchHub(Hub):
    # Methods are looked up case-insensitively by aiosignalr; no return annotation
    # means the completion carries no result.
    async def JoinGroup(self, group):
        await self.groups.add(group)

    async def SendToGroup(self, group, data):
        await self.clients.group(group).send("message", {"group": group, "data": data})


async def main() -> None:
    port = int(os.environ.get("PORT", "9003"))
    # Library defaults (keep-alive 15 s, client timeout 30 s, 32 KiB max incoming message);
    # MAX_MESSAGE_SIZE raises the incoming-message limit for large-payload runs.
    options = ServerOptions()
    if "MAX_MESSAGE_SIZE" in os.environ:
        options.maximum_receive_message_size = int(os.environ["MAX_MESSAGE_SIZE"])
    server = SignalRServer(BenchHub, options=options)
    app = server.create_application(path="/hub")  # aiohttp app with /hub and /hub/negotiate

    async def send(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("group"), str) or "data" not in body:
            return web.Response(status=400, text='expected {"group": string, "data": any}\n')
        group = body["group"]
        await server.lifetime.send_group(group, "message", ({"group": group, "data": body["data"]},))
        return web.Response(status=202)

    app.router.add_post("/send", send)

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"listening on {HOST}:{bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
