"""Python SignalR clients against rthub, one scenario per run, for interop-tests/python-clients.test.mjs.

Usage: clients.py <signalrcore|pysignalr> <WebSockets|ServerSentEvents|LongPolling> <json|messagepack> <hub url> [bearer]

Scenario: connect, JoinGroup (a blocking invocation: its completion must come back), SendToGroup
to that group, and receive the channel message back (the sender is a member). Prints one JSON
line: {"ok": true, "message": <the message's argument>} or {"ok": false, "error": "..."}; exits
0 either way once it has printed, non-zero if it crashed. Every wait is bounded.
"""

import asyncio
import json
import os
import sys
import threading
import uuid

TIMEOUT_S = 20


def signalrcore_run(transport, protocol, url, bearer):
    from signalrcore.hub_connection_builder import HubConnectionBuilder
    from signalrcore.protocol.messagepack_protocol import MessagePackHubProtocol
    from signalrcore.types import HttpTransportType

    transports = {
        "WebSockets": HttpTransportType.web_sockets,
        "ServerSentEvents": HttpTransportType.server_sent_events,
        "LongPolling": HttpTransportType.long_polling,
    }
    options = {"transport": transports[transport]}
    if bearer:
        options["access_token_factory"] = lambda: bearer
    builder = HubConnectionBuilder().with_url(url, options=options)
    if protocol == "messagepack":
        builder = builder.with_hub_protocol(MessagePackHubProtocol())
    hub = builder.build()

    group = f"app:py-{uuid.uuid4().hex[:8]}"
    opened, joined, received = threading.Event(), threading.Event(), threading.Event()
    result = {}
    errors = []

    def on_message(arguments):
        result["message"] = arguments[0]
        received.set()

    def on_joined(completion):
        if getattr(completion, "error", None):
            errors.append(f"JoinGroup failed: {completion.error}")
        joined.set()

    hub.on("message", on_message)
    hub.on_open(opened.set)
    hub.on_error(lambda error: errors.append(f"hub error: {error}"))
    hub.start()
    try:
        if not opened.wait(TIMEOUT_S):
            return {"ok": False, "error": f"not open within {TIMEOUT_S} s", "errors": errors}
        hub.send("JoinGroup", [group], on_invocation=on_joined)
        if not joined.wait(TIMEOUT_S) or errors:
            return {"ok": False, "error": "no JoinGroup completion", "errors": errors}
        hub.send("SendToGroup", [group, {"from": "signalrcore", "transport": transport}])
        if not received.wait(TIMEOUT_S):
            return {"ok": False, "error": "no message back", "errors": errors}
        return {"ok": True, "message": result["message"]}
    finally:
        # Bounded: signalrcore's SSE stop closes nothing the server sees, and its reader
        # thread waits for the next frame (the server's next ping, up to 15 s away).
        stopping = threading.Thread(target=hub.stop, daemon=True)
        stopping.start()
        stopping.join(3)


async def pysignalr_run(transport, protocol, url, bearer):
    from pysignalr.client import SignalRClient
    from pysignalr.messages import CompletionMessage
    from pysignalr.protocol.json import JSONProtocol
    from pysignalr.protocol.messagepack import MessagepackProtocol

    if transport != "WebSockets":
        return {"ok": False, "error": "pysignalr speaks WebSockets only"}
    hub_protocol = MessagepackProtocol() if protocol == "messagepack" else JSONProtocol()
    kwargs = {"protocol": hub_protocol}
    if bearer:
        # pysignalr calls `access_token_factory` only after the socket is open (for its
        # handshake), so negotiate and the upgrade would go without it: headers it is.
        kwargs["headers"] = {"Authorization": f"Bearer {bearer}"}
    client = SignalRClient(url, **kwargs)
    group = f"app:py-{uuid.uuid4().hex[:8]}"
    loop = asyncio.get_running_loop()
    opened, joined, received = asyncio.Event(), loop.create_future(), loop.create_future()

    async def on_open():
        opened.set()

    async def on_message(arguments):
        if not received.done():
            received.set_result(arguments[0])

    async def on_joined(message: CompletionMessage):
        if not joined.done():
            joined.set_result(message.error)

    client.on_open(on_open)
    client.on("message", on_message)
    runner = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(opened.wait(), TIMEOUT_S)
        await client.send("JoinGroup", [group], on_invocation=on_joined)
        error = await asyncio.wait_for(joined, TIMEOUT_S)
        if error:
            return {"ok": False, "error": f"JoinGroup failed: {error}"}
        await client.send("SendToGroup", [group, {"from": "pysignalr", "transport": transport}])
        message = await asyncio.wait_for(received, TIMEOUT_S)
        return {"ok": True, "message": message}
    except asyncio.TimeoutError:
        crashed = runner.exception() if runner.done() else None
        return {"ok": False, "error": f"timed out; client: {crashed!r}"}
    finally:
        runner.cancel()
        try:
            await runner
        except BaseException:
            pass


def main():
    client, transport, protocol, url = sys.argv[1:5]
    bearer = sys.argv[5] if len(sys.argv) > 5 else None
    if client == "signalrcore":
        outcome = signalrcore_run(transport, protocol, url, bearer)
    else:
        outcome = asyncio.run(pysignalr_run(transport, protocol, url, bearer))
    print(json.dumps(outcome, default=str), flush=True)
    # The outcome is out; client threads still winding down must not hold the process.
    os._exit(0)


if __name__ == "__main__":
    main()
