//! No sticky sessions: nodes of one cluster (the machine's Redis, a key prefix per test)
//! forward a transport request for another node's connection to that node. Negotiate on
//! one node and the WebSocket, the Server-Sent Events stream, the long polls and the POSTs
//! on others; a Web PubSub recovery on a node that does not have the connection.

mod cluster_support;
mod collections_support;

use cluster_support::redis_url;
use collections_support::{keys_config, ok, start_configured, Db, Server, TestDb, SERVER_KEY};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const RS: char = '\u{1e}';
const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

/// `count` nodes of one fresh cluster on `database`, each ready (it reaches Redis), and
/// their node ids.
async fn nodes(database: &TestDb, count: usize) -> (Vec<Server>, Vec<String>) {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let config = format!(
        "{}\n[webpubsub]\nrecovery_secs = 10\n\n[cluster]\nredis = \"{}\"\nprefix = \"{prefix}\"\n",
        keys_config(),
        redis_url()
    );
    let mut servers = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..count {
        let server = start_configured(&database.url, Some(&config)).await;
        ids.push(ready(&server).await);
        servers.push(server);
    }
    (servers, ids)
}

/// Wait until `node` reaches Redis; its node id.
async fn ready(node: &Server) -> String {
    for _ in 0..200 {
        let (status, body) = node.get("/readyz").await;
        if status == 200 && body["status"] == "ready" {
            // Its first heartbeat (with its address) goes out as it starts; give it a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return body["cluster"]["node"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the node never reached Redis");
}

async fn stop_all(servers: Vec<Server>, database: TestDb) {
    for server in servers {
        server.stop().await;
    }
    database.drop_it().await;
}

/// `POST /negotiate` on `node`: the connection token.
async fn negotiate(node: &Server) -> String {
    let negotiated: Value = node
        .http
        .post(node.url("/api/_rt/signalr/negotiate?negotiateVersion=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    negotiated["connectionToken"].as_str().unwrap().to_owned()
}

fn transport_url(node: &Server, token: &str) -> String {
    node.url(&format!("/api/_rt/signalr?id={token}"))
}

fn invocation(id: &str, target: &str, arguments: Value) -> String {
    format!(
        "{}{RS}",
        json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments})
    )
}

/// A server's send to channel `room` (group `app:room`) through `node`.
async fn send_to_room(node: &Server, n: u64) {
    let response = node
        .http
        .post(node.url("/api/_rt/send"))
        .header("x-apikey", SERVER_KEY)
        .json(&json!({"channel": "room", "body": n}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// The hub messages in a body of records, pings left out.
fn records(text: &str) -> Vec<Value> {
    text.split(RS)
        .filter(|r| !r.is_empty())
        .map(|r| serde_json::from_str::<Value>(r).unwrap())
        .filter(|m| m["type"] != 6)
        .collect()
}

/// `numbers` sorted: sends through different nodes may pass each other (each node's own
/// sends stay in order); what counts is that each arrives exactly once.
fn sorted(mut numbers: Vec<u64>) -> Vec<u64> {
    numbers.sort_unstable();
    numbers
}

/// The `n`s of the channel messages among `messages`.
fn room_numbers(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m["type"] == 1 && m["target"] == "message")
        .map(|m| m["arguments"][0]["data"].as_u64().unwrap())
        .collect()
}

/// The next hub message on a raw SignalR socket (`seen`: read, not yet taken).
async fn next_hub(socket: &mut Socket, seen: &mut Vec<Value>) -> Value {
    loop {
        if !seen.is_empty() {
            return seen.remove(0);
        }
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => seen.extend(records(&text)),
            other => panic!("the socket ended: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_on_another_node_serves_the_connection_negotiated_elsewhere() {
    let database = TestDb::new(Db::Sqlite).await;
    let (servers, ids) = nodes(&database, 2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let token = negotiate(a).await;
    assert!(token.starts_with(&format!("{}.", ids[0])), "{token}");

    let ws = transport_url(b, &token).replacen("http", "ws", 1);
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    socket.send(Message::text(HANDSHAKE)).await.unwrap();
    let mut seen = Vec::new();
    assert_eq!(
        next_hub(&mut socket, &mut seen).await,
        json!({}),
        "handshake reply"
    );
    socket
        .send(Message::text(invocation(
            "1",
            "JoinGroup",
            json!(["app:room"]),
        )))
        .await
        .unwrap();
    let completion = next_hub(&mut socket, &mut seen).await;
    ok(&completion);
    // A member on B itself, for comparison.
    let mut local = b.hub().await;
    ok(&local.invoke("JoinGroup", json!(["app:room"])).await);

    for n in 1..=10 {
        send_to_room(if n % 2 == 0 { a } else { b }, n).await;
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        got.extend(room_numbers(&[next_hub(&mut socket, &mut seen).await]));
    }
    assert_eq!(sorted(got), (1..=10).collect::<Vec<_>>(), "each once");
    let mut local_got = Vec::new();
    while local_got.len() < 10 {
        let message = local.next_message().await;
        local_got.extend(room_numbers(&[message]));
    }
    assert_eq!(sorted(local_got), (1..=10).collect::<Vec<_>>());
    local.expect_silence(Duration::from_millis(300)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(quiet.is_err() && seen.is_empty(), "nothing more: {quiet:?}");

    // The client's Close goes through with its code; the owner answers it.
    socket
        .send(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            },
        )))
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(frame)) = socket.next().await {
            if let Message::Close(frame) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(end, Some(1000));
    // The connection is gone on A: its token opens nothing, wherever it is presented.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let response = b
        .http
        .post(transport_url(b, &token))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    stop_all(servers, database).await;
}

/// A Server-Sent Events stream's events, as they arrive.
struct Events {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl Events {
    async fn open(url: &str) -> Self {
        let response = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The hub messages of the next event.
    async fn next(&mut self) -> Vec<Value> {
        loop {
            if let Some(end) = self.buffer.find("\r\n\r\n") {
                let event: String = self.buffer.drain(..end + 4).collect();
                let data: Vec<&str> = event
                    .split("\r\n")
                    .filter_map(|line| line.strip_prefix("data: "))
                    .collect();
                let messages = records(&data.join("\n"));
                if !messages.is_empty() {
                    return messages;
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream goes on")
                .unwrap();
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            // The opening comment.
            if self.buffer.starts_with(":\r\n") {
                self.buffer.drain(..3);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_on_one_node_and_sends_on_a_third() {
    let database = TestDb::new(Db::Sqlite).await;
    let (servers, _) = nodes(&database, 3).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let token = negotiate(a).await;
    let mut events = Events::open(&transport_url(b, &token)).await;
    let post = |body: String| {
        let url = transport_url(c, &token);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .body(body)
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(post(HANDSHAKE.into()).await, 200);
    assert_eq!(events.next().await, [json!({})], "handshake reply");
    assert_eq!(
        post(invocation("1", "JoinGroup", json!(["app:room"]))).await,
        200
    );
    ok(&events.next().await[0]);

    for n in 1..=10 {
        send_to_room(&servers[n as usize % 3], n).await;
    }
    let mut got = Vec::new();
    while got.len() < 10 {
        got.extend(room_numbers(&events.next().await));
    }
    assert_eq!(sorted(got), (1..=10).collect::<Vec<_>>(), "each once");
    // An invocation's completion comes back the same way, after nothing else.
    assert_eq!(
        post(invocation("2", "LeaveGroup", json!(["app:room"]))).await,
        200
    );
    let completion = events.next().await;
    assert_eq!(completion.len(), 1, "{completion:?}");
    assert_eq!(completion[0]["invocationId"], "2");

    // Closing the stream on B ends the connection on A.
    drop(events);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post("{\"type\":6}\u{1e}".into()).await, 404);
    stop_all(servers, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_and_sends_on_alternating_nodes() {
    let database = TestDb::new(Db::Sqlite).await;
    let (servers, _) = nodes(&database, 3).await;
    let token = negotiate(&servers[0]).await;
    let http = reqwest::Client::new();
    let node = |i: usize| &servers[i % 3];
    // The first poll answers at once, empty.
    let first = http
        .get(transport_url(node(1), &token))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.bytes().await.unwrap().is_empty());
    let body = format!(
        "{HANDSHAKE}{}",
        invocation("1", "JoinGroup", json!(["app:room"]))
    );
    let sent = http
        .post(transport_url(node(2), &token))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);

    let mut messages = Vec::new();
    let mut poll = 0;
    let mut sent_numbers = 0;
    while room_numbers(&messages).len() < 10 {
        poll += 1;
        assert!(poll < 50, "still waiting after {poll} polls: {messages:?}");
        if messages.iter().any(|m| m["invocationId"] == "1") && sent_numbers == 0 {
            // Joined: now the sends, through every node.
            for n in 1..=10 {
                send_to_room(node(n as usize), n).await;
            }
            sent_numbers = 10;
        }
        let response = http
            .get(transport_url(node(poll), &token))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        messages.extend(records(&text));
    }
    assert_eq!(messages[0], json!({}), "handshake reply first");
    ok(&messages[1]);
    assert_eq!(
        sorted(room_numbers(&messages)),
        (1..=10).collect::<Vec<_>>(),
        "each once"
    );

    // DELETE through another node: 202, then the token is gone everywhere.
    let deleted = http
        .delete(transport_url(node(poll + 1), &token))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 202);
    for i in 0..3 {
        let after = http
            .get(transport_url(node(i), &token))
            .send()
            .await
            .unwrap();
        assert!(
            [204, 404].contains(&after.status().as_u16()),
            "{}",
            after.status()
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let gone = http
        .get(transport_url(node(2), &token))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    stop_all(servers, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owner_and_a_forwarded_request_are_a_plain_404() {
    let database = TestDb::new(Db::Sqlite).await;
    let (mut servers, ids) = nodes(&database, 2).await;
    let http = reqwest::Client::new();
    let (a, b) = (&servers[0], &servers[1]);

    // A request already forwarded once is served where it lands: B does not have it.
    let token = negotiate(a).await;
    let marked = http
        .post(transport_url(b, &token))
        .header("x-rthub-forwarded", &ids[0])
        .body(HANDSHAKE)
        .send()
        .await
        .unwrap();
    assert_eq!(marked.status(), 404);
    assert_eq!(marked.text().await.unwrap(), "No Connection with that ID");
    // A hint naming B itself (forged, or left from before a restart) is not forwarded.
    let own = format!("{}.{}", ids[1], token.split_once('.').unwrap().1);
    let response = http
        .post(transport_url(b, &own))
        .body(HANDSHAKE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Unmarked, the same request reaches A.
    let forwarded = http
        .post(transport_url(b, &token))
        .body(HANDSHAKE)
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);

    // A is gone: its tokens are unknown, also to a WebSocket.
    let orphan = negotiate(a).await;
    servers.remove(0).stop().await;
    let b = &servers[0];
    for method in [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let response = http
            .request(method.clone(), transport_url(b, &orphan))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method}");
        assert_eq!(response.text().await.unwrap(), "No Connection with that ID");
    }
    let ws = transport_url(b, &orphan).replacen("http", "ws", 1);
    match tokio_tungstenite::connect_async(ws).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    stop_all(servers, database).await;
}

async fn open_reliable(url: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static(RELIABLE));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], RELIABLE);
    socket
}

/// The next Web PubSub message, or the close code if the server closes.
async fn next_wps(socket: &mut Socket) -> Result<Value, u16> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(close))) => return Err(close.map_or(1005, |c| c.code.into())),
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_pubsub_recovery_reaches_the_node_that_parked_the_connection() {
    let database = TestDb::new(Db::Sqlite).await;
    let (mut servers, ids) = nodes(&database, 2).await;
    let (a, b) = (&servers[0], &servers[1]);
    let access: Value = a
        .http
        .get(a.url("/api/_rt/ws?group=app:room"))
        .header("accept", "application/json")
        .header("x-apikey", SERVER_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url_a = access["url"].as_str().unwrap().to_owned();
    let url_b = url_a.replace(
        &a.base.replacen("http", "ws", 1),
        &b.base.replacen("http", "ws", 1),
    );
    assert_ne!(url_a, url_b);

    let mut socket = open_reliable(&url_a).await;
    let connected = next_wps(&mut socket).await.unwrap();
    assert_eq!(connected["event"], "connected", "{connected}");
    let id = connected["connectionId"].as_str().unwrap().to_owned();
    let token = connected["reconnectionToken"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{}.", ids[0])), "{token}");
    send_to_room(b, 1).await;
    let first = next_wps(&mut socket).await.unwrap();
    assert_eq!(
        (first["sequenceId"].as_u64(), first["data"].as_u64()),
        (Some(1), Some(1))
    );
    socket
        .send(Message::text(
            json!({"type": "sequenceAck", "sequenceId": 1}).to_string(),
        ))
        .await
        .unwrap();
    // Cut without a Close: A parks the connection.
    drop(socket.into_inner());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 2..=4 {
        send_to_room(if n % 2 == 0 { a } else { b }, n).await;
    }

    // The client comes back through B, which does not have the connection: piped to A.
    let back = format!("{url_b}&awps_connection_id={id}&awps_reconnection_token={token}");
    let mut socket = open_reliable(&back).await;
    let connected = next_wps(&mut socket).await.unwrap();
    assert_eq!(connected["event"], "connected", "{connected}");
    assert_eq!(connected["connectionId"], id.as_str());
    let mut got = Vec::new();
    while got.len() < 3 {
        let message = next_wps(&mut socket).await.unwrap();
        got.push((
            message["sequenceId"].as_u64().unwrap(),
            message["data"].as_u64().unwrap(),
        ));
    }
    let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 3, 4], "the ids they had, in order");
    let numbers = sorted(got.iter().map(|(_, n)| *n).collect());
    assert_eq!(numbers, [2, 3, 4], "each once");
    socket
        .send(Message::text(
            json!({"type": "sequenceAck", "sequenceId": 4}).to_string(),
        ))
        .await
        .unwrap();
    // Sends from the client go through the pipe too.
    let send = json!({"type": "sendToGroup", "group": "app:room", "data": 5, "ackId": 1});
    socket.send(Message::text(send.to_string())).await.unwrap();
    let mut acked = false;
    let mut echoed = false;
    while !(acked && echoed) {
        let message = next_wps(&mut socket).await.unwrap();
        acked |= message["type"] == "ack" && message["success"] == true;
        echoed |= message["data"] == 5 && message["sequenceId"] == 5;
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), socket.next()).await;
    assert!(quiet.is_err(), "nothing more: {quiet:?}");

    // A is gone: B cannot recover the connection and says so the Web PubSub way (1008).
    drop(socket.into_inner());
    tokio::time::sleep(Duration::from_millis(200)).await;
    servers.remove(0).stop().await;
    let mut refused = open_reliable(&back).await;
    assert_eq!(next_wps(&mut refused).await, Err(1008));
    stop_all(servers, database).await;
}
