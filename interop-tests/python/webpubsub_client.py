"""azure-messaging-webpubsubclient against rthub, one run per protocol, for
interop-tests/webpubsub-python.test.mjs.

Usage: webpubsub_client.py <client url> <reliable|json> <group>

Scenario: open (the connected event must come), join_group, send_to_group a JSON, a text and a
binary message (each acked), receive the three back (the client is a member), then wait for a
JSON message {"from": "node"} that the test sends once it has seen ours. Prints one JSON line:
{"ok": true, "connectionId", "userId", "messages": [...]} or {"ok": false, "error": "..."};
exits 0 either way once it has printed. Every wait is bounded.
"""

import json
import sys
import threading
import traceback

TIMEOUT_S = 20
ACK_TIMEOUT_S = 3


def describe(message):
    data = message.data
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = list(bytes(data))
    return {
        "group": message.group,
        "dataType": str(getattr(message.data_type, "value", message.data_type)),
        "data": data,
        "fromUserId": message.from_user_id,
        "sequenceId": message.sequence_id,
    }


def run(url, protocol, group):
    from azure.messaging.webpubsubclient import WebPubSubClient
    from azure.messaging.webpubsubclient.models import CallbackType, WebPubSubDataType, WebPubSubProtocolType

    protocol_type = WebPubSubProtocolType.JSON_RELIABLE if protocol == "reliable" else WebPubSubProtocolType.JSON
    # The sync client sends, then waits on a condition without checking whether the ack came
    # in between: an ack faster than that (loopback) is a lost wakeup, and the call returns
    # only after ack_timeout, successfully. A short timeout keeps such runs short; an ack that
    # never comes still fails the call (the entry keeps its "Timeout" error).
    client = WebPubSubClient(url, protocol_type=protocol_type, ack_timeout=ACK_TIMEOUT_S, start_timeout=TIMEOUT_S)
    connected = threading.Event()
    lock = threading.Condition()
    result = {"messages": []}

    def on_connected(args):
        result["connectionId"] = args.connection_id
        result["userId"] = args.user_id
        connected.set()

    def on_group_message(args):
        with lock:
            result["messages"].append(describe(args))
            lock.notify_all()

    def wait_for(predicate, what):
        with lock:
            if not lock.wait_for(lambda: predicate(result["messages"]), TIMEOUT_S):
                raise TimeoutError(f"no {what} within {TIMEOUT_S} s; got {result['messages']}")

    client.subscribe(CallbackType.CONNECTED, on_connected)
    client.subscribe(CallbackType.GROUP_MESSAGE, on_group_message)
    client.open()
    try:
        if not connected.wait(TIMEOUT_S):
            return {"ok": False, "error": f"no connected event within {TIMEOUT_S} s"}
        client.join_group(group)
        client.send_to_group(group, {"from": "python", "n": [1, 2.5]}, WebPubSubDataType.JSON)
        client.send_to_group(group, "text from python", WebPubSubDataType.TEXT)
        client.send_to_group(group, memoryview(b"\x00\x01\xfe\xff"), WebPubSubDataType.BINARY)
        wait_for(lambda ms: len(ms) >= 3, "echo of our three messages")
        wait_for(lambda ms: any(m["data"] == {"from": "node"} for m in ms), "message from node")
        return {"ok": True, **result}
    finally:
        client.close()


def main():
    url, protocol, group = sys.argv[1:4]
    try:
        outcome = run(url, protocol, group)
    except Exception as error:  # report every failure as the one JSON line the test reads
        outcome = {"ok": False, "error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc()}
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
