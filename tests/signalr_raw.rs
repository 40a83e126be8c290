//! The SignalR endpoint spoken to with raw HTTP and raw WebSocket frames: the edges official
//! clients never show (bad handshakes, malformed messages, oversize input, slow readers).

use futures_util::{SinkExt, StreamExt};
use rthub::{Cli, Config, RunningServer};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    server: RunningServer,
    base: String,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

async fn server_with(configure: impl FnOnce(&mut Cli)) -> Server {
    let dir = std::env::temp_dir().join(format!("rthub_raw_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut cli = Cli {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        database: Some(format!("sqlite://{}", dir.join("db").display())),
        server_key: Some("raw-tests-server-key-0123".into()),
        ..Default::default()
    };
    configure(&mut cli);
    let server = RunningServer::start(Config::load(cli).unwrap())
        .await
        .unwrap();
    let base = format!("http://{}/api/_rt/signalr", server.local_addr());
    Server {
        server,
        base,
        http: reqwest::Client::new(),
        dir,
    }
}

async fn server() -> Server {
    server_with(|_| {}).await
}

impl Server {
    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    async fn negotiate(&self, query: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/negotiate{query}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn token(&self) -> String {
        let (_, body) = self.negotiate("?negotiateVersion=1").await;
        body["connectionToken"].as_str().unwrap().to_owned()
    }

    fn ws_url(&self, query: &str) -> String {
        format!("{}{query}", self.base.replacen("http", "ws", 1))
    }

    async fn socket(&self) -> Socket {
        let token = self.token().await;
        tokio_tungstenite::connect_async(self.ws_url(&format!("?id={token}")))
            .await
            .unwrap()
            .0
    }

    /// A socket past a JSON handshake.
    async fn connected(&self) -> Socket {
        let mut socket = self.socket().await;
        send(&mut socket, "{\"protocol\":\"json\",\"version\":1}\u{1e}").await;
        assert_eq!(next_text(&mut socket).await, "{}\u{1e}");
        socket
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.unwrap();
}

async fn next_frame(socket: &mut Socket) -> Option<Message> {
    tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame within 10 s")
        .and_then(Result::ok)
}

async fn next_text(socket: &mut Socket) -> String {
    match next_frame(socket).await {
        Some(Message::Text(text)) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next hub messages other than pings (one text frame may hold several).
async fn next_messages(socket: &mut Socket) -> Vec<Value> {
    loop {
        let text = next_text(socket).await;
        let messages: Vec<Value> = text
            .split('\u{1e}')
            .filter(|r| !r.is_empty())
            .map(|r| serde_json::from_str(r).unwrap())
            .filter(|m: &Value| m["type"] != 6)
            .collect();
        if !messages.is_empty() {
            return messages;
        }
    }
}

async fn next_message(socket: &mut Socket) -> Value {
    next_messages(socket).await.remove(0)
}

/// The socket ends (a Close frame or the end of the stream) within 10 s.
async fn expect_closed(socket: &mut Socket) {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("closed within 10 s")
        {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
            Some(Ok(_)) => {}
        }
    }
}

fn invocation(id: &str, target: &str, arguments: Value) -> String {
    format!(
        "{}\u{1e}",
        json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments})
    )
}

// ------------------------------------------------------------------ negotiate

#[tokio::test]
async fn negotiate_versions_and_shapes() {
    let s = server().await;
    let (status, v0) = s.negotiate("").await;
    assert_eq!(status, 200);
    assert_eq!(v0["negotiateVersion"], 0);
    assert!(v0.get("connectionToken").is_none());
    assert_eq!(v0["connectionId"].as_str().unwrap().len(), 22);

    let response = s
        .http
        .post(format!(
            "{}/negotiate?negotiateVersion=1&id=stray&access_token=",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().await.unwrap();
    let order: Vec<usize> = [
        "negotiateVersion",
        "connectionId",
        "connectionToken",
        "availableTransports",
    ]
    .iter()
    .map(|k| text.find(k).unwrap())
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        ".NET's key order: {text}"
    );
    let v1: Value = serde_json::from_str(&text).unwrap();
    let (id, token) = (
        v1["connectionId"].as_str().unwrap(),
        v1["connectionToken"].as_str().unwrap(),
    );
    assert_ne!(id, token);
    for value in [id, token] {
        assert!(
            value.len() == 22
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
    assert_eq!(
        v1["availableTransports"],
        json!([
            {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]},
            {"transport": "ServerSentEvents", "transferFormats": ["Text"]},
            {"transport": "LongPolling", "transferFormats": ["Text", "Binary"]}
        ])
    );
    assert!(
        v1.get("useStatefulReconnect").is_none(),
        "never volunteered"
    );
    assert_eq!(
        s.negotiate("?negotiateVersion=5").await.1["negotiateVersion"],
        1
    );
    assert_eq!(
        s.negotiate("?negotiateVersion=abc").await,
        (
            200,
            json!({"error": "The client requested a non-integer protocol version."})
        )
    );
    assert_eq!(
        s.negotiate("?negotiateVersion=1&useStatefulReconnect=true")
            .await
            .1["useStatefulReconnect"],
        true
    );
    let get = s
        .http
        .get(format!("{}/negotiate", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    s.stop().await;
}

#[tokio::test]
async fn stateful_reconnect_is_not_offered_when_disabled() {
    let s = server_with(|cli| cli.signalr.stateful_reconnect = Some(false)).await;
    assert!(s
        .negotiate("?negotiateVersion=1&useStatefulReconnect=true")
        .await
        .1
        .get("useStatefulReconnect")
        .is_none());
    s.stop().await;
}

#[tokio::test]
async fn unknown_missing_and_wrong_ids() {
    let s = server().await;
    let status = |r: reqwest::Response| r.status().as_u16();
    let unknown = s.ws_url("?id=nope");
    match tokio_tungstenite::connect_async(unknown).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected 404 before the upgrade, got {other:?}"),
    }
    assert_eq!(status(s.http.post(&s.base).send().await.unwrap()), 400);
    // GET without an id is the RestAPI.com connection-info call, not a transport request.
    let info: serde_json::Value = s
        .http
        .get(&s.base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["url"].as_str().unwrap().ends_with("/api/_rt/signalr"));
    assert!(!info["accessToken"].as_str().unwrap().is_empty());
    assert_eq!(status(s.http.delete(&s.base).send().await.unwrap()), 400);
    assert_eq!(
        status(
            s.http
                .post(format!("{}?id=nope", s.base))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(
        status(
            s.http
                .get(format!("{}?id=nope", s.base))
                .send()
                .await
                .unwrap()
        ),
        404
    );
    assert_eq!(status(s.http.put(&s.base).send().await.unwrap()), 405);

    // A WebSocket connection: POST is 405, a second socket is 409, SSE/LP on it are 400.
    let token = s.token().await;
    let (_socket, _) = tokio_tungstenite::connect_async(s.ws_url(&format!("?id={token}")))
        .await
        .unwrap();
    assert_eq!(
        status(
            s.http
                .post(format!("{}?id={token}", s.base))
                .body("x")
                .send()
                .await
                .unwrap()
        ),
        405
    );
    match tokio_tungstenite::connect_async(s.ws_url(&format!("?id={token}"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 409)
        }
        other => panic!("expected 409, got {other:?}"),
    }
    assert_eq!(
        status(
            s.http
                .get(format!("{}?id={token}", s.base))
                .send()
                .await
                .unwrap()
        ),
        400
    );
    s.stop().await;
}

#[tokio::test]
async fn unused_negotiated_connections_expire() {
    let s = server_with(|cli| cli.signalr.disconnect_timeout_secs = Some(1)).await;
    let token = s.token().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    match tokio_tungstenite::connect_async(s.ws_url(&format!("?id={token}"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404)
        }
        other => panic!("expected 404, got {other:?}"),
    }
    s.stop().await;
}

#[tokio::test]
async fn cors_echoes_the_configured_origin_with_credentials() {
    let s = server_with(|cli| cli.cors_origins = Some(vec!["http://example.test".into()])).await;
    let response = s
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/negotiate", s.base))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "x-signalr-user-agent,x-requested-with",
        )
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://example.test"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-signalr-user-agent") && allowed.contains("x-requested-with"));
    let other = s
        .http
        .post(format!("{}/negotiate", s.base))
        .header("origin", "http://evil.test")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}

// ------------------------------------------------------------------ handshake

#[tokio::test]
async fn handshake_replies_and_errors() {
    let s = server().await;
    for version in [0, 1, 2] {
        let mut socket = s.socket().await;
        send(
            &mut socket,
            &format!("{{\"protocol\":\"json\",\"version\":{version}}}\u{1e}"),
        )
        .await;
        assert_eq!(
            next_text(&mut socket).await,
            "{}\u{1e}",
            "version {version}"
        );
    }
    for (handshake, error) in [
        (
            "{\"protocol\":\"json\",\"version\":3}\u{1e}",
            "The server does not support version 3 of the 'json' protocol.",
        ),
        (
            "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
            "The protocol 'xml' is not supported.",
        ),
    ] {
        let mut socket = s.socket().await;
        send(&mut socket, handshake).await;
        assert_eq!(
            next_text(&mut socket).await,
            format!("{}\u{1e}", json!({"error": error}))
        );
        expect_closed(&mut socket).await;
    }
    let mut socket = s.socket().await;
    send(&mut socket, "{\"protocol\":\"json\"}\u{1e}").await;
    let reply: Value =
        serde_json::from_str(next_text(&mut socket).await.trim_end_matches('\u{1e}')).unwrap();
    assert!(reply["error"]
        .as_str()
        .unwrap()
        .starts_with("An unexpected error occurred during connection handshake."));
    s.stop().await;
}

#[tokio::test]
async fn handshake_split_over_frames_and_followed_by_an_invocation() {
    let s = server().await;
    let mut socket = s.socket().await;
    send(&mut socket, "{\"protocol\":").await;
    send(&mut socket, "\"json\",\"version\":1}\u{1e}").await;
    assert_eq!(next_text(&mut socket).await, "{}\u{1e}");

    let mut socket = s.socket().await;
    send(
        &mut socket,
        &format!(
            "{{\"protocol\":\"json\",\"version\":1}}\u{1e}{}",
            invocation("1", "JoinGroup", json!(["app:g"]))
        ),
    )
    .await;
    let first = next_text(&mut socket).await;
    let mut rest = first
        .strip_prefix("{}\u{1e}")
        .expect("the reply first, nothing before it")
        .to_owned();
    if rest.is_empty() {
        rest = next_text(&mut socket).await;
    }
    assert_eq!(
        rest,
        "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\u{1e}"
    );
    s.stop().await;
}

#[tokio::test]
async fn handshake_timeout_and_oversize_handshake() {
    let s = server_with(|cli| {
        cli.signalr.handshake_timeout_secs = Some(1);
        cli.signalr.max_message_bytes = Some(1024);
    })
    .await;
    let mut socket = s.socket().await;
    assert_eq!(
        next_text(&mut socket).await,
        "{\"error\":\"Handshake was canceled.\"}\u{1e}"
    );
    expect_closed(&mut socket).await;
    let mut socket = s.socket().await;
    send(&mut socket, &" ".repeat(2000)).await;
    assert_eq!(
        next_text(&mut socket).await,
        "{\"error\":\"Handshake was canceled.\"}\u{1e}"
    );
    s.stop().await;
}

// ------------------------------------------------------------------ JSON hub protocol

#[tokio::test]
async fn invocations_completions_and_errors() {
    let s = server().await;
    let mut socket = s.connected().await;
    // `type` last, mixed-case target.
    send(&mut socket, "{\"target\":\"joingroup\",\"arguments\":[\"app:a\"],\"invocationId\":\"1\",\"type\":1}\u{1e}").await;
    assert_eq!(
        next_message(&mut socket).await,
        json!({"type": 3, "invocationId": "1", "result": null})
    );
    send(&mut socket, &invocation("2", "Nope", json!([]))).await;
    assert_eq!(
        next_message(&mut socket).await,
        json!({"type": 3, "invocationId": "2", "error": "Unknown hub method 'Nope'"})
    );
    send(&mut socket, &invocation("3", "JoinGroup", json!([]))).await;
    assert_eq!(
        next_message(&mut socket).await["error"],
        "Failed to invoke 'JoinGroup' due to an error on the server."
    );
    send(&mut socket, "{\"type\":4,\"invocationId\":\"4\",\"target\":\"SendToGroup\",\"arguments\":[\"app:a\",1]}\u{1e}").await;
    assert!(next_message(&mut socket).await["error"]
        .as_str()
        .unwrap()
        .contains("non-streaming 'SendToGroup' method with a streaming invocation"));
    // Non-blocking invocations (no id, or a null id) get nothing back, even when they fail.
    send(&mut socket, "{\"type\":1,\"target\":\"Nope\",\"arguments\":[]}\u{1e}{\"type\":1,\"invocationId\":null,\"target\":\"JoinGroup\",\"arguments\":[]}\u{1e}").await;
    // An unknown type is skipped; several messages in one frame are handled in order.
    send(
        &mut socket,
        &format!(
            "{{\"type\":99,\"x\":1}}\u{1e}{}{}",
            invocation("5", "LeaveGroup", json!(["app:a"])),
            invocation("6", "JoinGroup", json!(["app:b"]))
        ),
    )
    .await;
    let mut completions = Vec::new();
    while completions.len() < 2 {
        completions.extend(next_messages(&mut socket).await);
    }
    assert_eq!(
        completions[0]["invocationId"], "5",
        "nothing came back for the non-blocking ones"
    );
    assert_eq!(completions[1]["invocationId"], "6");
    // A message split over two frames.
    let split = invocation("7", "LeaveGroup", json!(["app:b"]));
    send(&mut socket, &split[..10]).await;
    send(&mut socket, &split[10..]).await;
    assert_eq!(next_message(&mut socket).await["invocationId"], "7");
    s.stop().await;
}

#[tokio::test]
async fn group_messages_between_raw_connections() {
    let s = server().await;
    let mut a = s.connected().await;
    let mut b = s.connected().await;
    send(&mut b, &invocation("1", "JoinGroup", json!(["app:raw"]))).await;
    next_message(&mut b).await;
    send(
        &mut a,
        &invocation("1", "SendToGroup", json!(["app:raw", {"k": [1, null]}])),
    )
    .await;
    assert_eq!(
        next_message(&mut a).await,
        json!({"type": 3, "invocationId": "1", "result": null})
    );
    let message = next_message(&mut b).await;
    assert_eq!(message["type"], 1);
    assert_eq!(message["target"], "message");
    assert!(
        message.get("invocationId").is_none(),
        "never an invocationId on a non-blocking send"
    );
    assert_eq!(message["arguments"][0]["group"], "app:raw");
    assert_eq!(message["arguments"][0]["data"], json!({"k": [1, null]}));
    assert_eq!(message["arguments"][0]["fromUserId"], Value::Null);
    s.stop().await;
}

#[tokio::test]
async fn malformed_input_closes_with_an_error() {
    let s = server().await;
    for bad in [
        "{nope\u{1e}",
        "[1,2]\u{1e}",
        "{\"target\":\"x\"}\u{1e}",
        "{\"type\":1,\"target\":\"x\"}\u{1e}",
    ] {
        let mut socket = s.connected().await;
        send(&mut socket, bad).await;
        let close = next_message(&mut socket).await;
        assert_eq!(close["type"], 7, "{bad}: {close}");
        assert!(
            close["error"]
                .as_str()
                .unwrap()
                .starts_with("Connection closed with an error."),
            "{close}"
        );
        assert!(close.get("allowReconnect").is_none());
        expect_closed(&mut socket).await;
    }
    // Invalid UTF-8 in a binary frame after a JSON handshake.
    let mut socket = s.connected().await;
    socket
        .send(Message::binary(vec![b'{', 0xff, b'}', 0x1e]))
        .await
        .unwrap();
    assert_eq!(next_message(&mut socket).await["type"], 7);
    s.stop().await;
}

#[tokio::test]
async fn an_oversize_message_closes_only_its_sender() {
    let s = server_with(|cli| cli.signalr.max_message_bytes = Some(1024)).await;
    let mut big = s.connected().await;
    let mut other = s.connected().await;
    send(&mut other, &invocation("1", "JoinGroup", json!(["app:o"]))).await;
    next_message(&mut other).await;
    send(
        &mut big,
        &invocation("1", "SendToGroup", json!(["app:o", "x".repeat(2000)])),
    )
    .await;
    let close = next_message(&mut big).await;
    assert_eq!(close["type"], 7);
    assert!(
        close["error"]
            .as_str()
            .unwrap()
            .contains("maximum message size"),
        "{close}"
    );
    expect_closed(&mut big).await;
    send(
        &mut other,
        &invocation("2", "SendToGroup", json!(["app:o", "fine"])),
    )
    .await;
    let messages = next_messages(&mut other).await;
    assert!(messages
        .iter()
        .any(|m| m["type"] == 3 || m["target"] == "message"));
    s.stop().await;
}

#[tokio::test]
async fn a_client_close_ends_the_connection() {
    let s = server().await;
    let mut socket = s.connected().await;
    send(&mut socket, "{\"type\":7}\u{1e}").await;
    expect_closed(&mut socket).await;
    s.stop().await;
}

// ------------------------------------------------------------------ keep-alive and shutdown

#[tokio::test]
async fn pings_on_the_keep_alive_interval() {
    let s = server_with(|cli| cli.signalr.keep_alive_secs = Some(1)).await;
    let mut socket = s.connected().await;
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while let Ok(Some(Ok(Message::Text(text)))) =
        tokio::time::timeout_at(deadline, socket.next()).await
    {
        pings += text.matches("{\"type\":6}").count();
    }
    assert!(pings >= 2, "{pings} pings in 3.5 s");
    s.stop().await;
}

#[tokio::test]
async fn a_silent_client_that_pinged_is_timed_out_and_one_that_never_pinged_is_not() {
    let s = server_with(|cli| {
        cli.signalr.client_timeout_secs = Some(2);
        cli.signalr.keep_alive_secs = Some(1);
    })
    .await;
    let mut pinged = s.connected().await;
    let mut legacy = s.connected().await;
    send(&mut pinged, "{\"type\":6}\u{1e}").await;
    let close = next_message(&mut pinged).await;
    assert_eq!(close["type"], 7);
    assert_eq!(close["allowReconnect"], true);
    assert!(close["error"].is_string());
    expect_closed(&mut pinged).await;
    // The legacy client is still served after the same time.
    send(&mut legacy, &invocation("1", "JoinGroup", json!(["app:l"]))).await;
    assert_eq!(next_message(&mut legacy).await["invocationId"], "1");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_tells_every_client_it_may_reconnect() {
    let s = server().await;
    let mut sockets = vec![s.connected().await, s.connected().await];
    let stopping = tokio::spawn(s.server.shutdown());
    for socket in &mut sockets {
        assert_eq!(
            next_message(socket).await,
            json!({"type": 7, "allowReconnect": true})
        );
        expect_closed(socket).await;
    }
    stopping.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&s.dir);
}

// ------------------------------------------------------------------ slow consumers

#[tokio::test]
async fn a_reader_that_stops_reading_is_cut_off_and_nobody_else_waits() {
    let s = server_with(|cli| cli.signalr.max_outbound_queue_bytes = Some(256 * 1024)).await;
    let mut slow = s.connected().await;
    let mut healthy = s.connected().await;
    let mut sender = s.connected().await;
    for socket in [&mut slow, &mut healthy] {
        send(socket, &invocation("j", "JoinGroup", json!(["app:slow"]))).await;
        next_message(socket).await;
    }
    // `slow` never reads again. Push far more than kernel buffers plus the queue limit.
    let payload = "x".repeat(4 * 1024);
    let messages = 4000; // ~16 MB per member
    let healthy_reader = tokio::spawn(async move {
        let mut received = 0;
        while received < messages {
            for message in next_messages(&mut healthy).await {
                if message["target"] == "message" {
                    received += 1;
                }
            }
        }
        received
    });
    for i in 0..messages {
        send(&mut sender, &format!("{}\u{1e}", json!({"type": 1, "target": "SendToGroup", "arguments": ["app:slow", {"i": i, "p": payload}]}))).await;
        // Pace the sender a little (a round trip every 50 messages), as a real one would be:
        // the point is that the slow member never holds it up, not to outrun the healthy one.
        if i % 50 == 49 {
            let id = format!("pace{i}");
            send(
                &mut sender,
                &invocation(&id, "LeaveGroup", json!(["app:none"])),
            )
            .await;
            while next_message(&mut sender).await["invocationId"] != id.as_str() {}
        }
    }
    // Every send was taken (the sender never waited for the slow member).
    send(
        &mut sender,
        &invocation("done", "LeaveGroup", json!(["app:slow"])),
    )
    .await;
    loop {
        let message = next_message(&mut sender).await;
        if message["invocationId"] == "done" {
            break;
        }
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), healthy_reader)
            .await
            .unwrap()
            .unwrap(),
        messages
    );
    // The slow member was closed: reading now drains what the kernel held, then a Close with
    // the slow-consumer error, then the end.
    let mut saw_close = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next())
            .await
            .expect("ends within 10 s")
        {
            Some(Ok(Message::Text(text))) => {
                if text.contains("\"type\":7") && text.contains("outbound queue") {
                    saw_close = true;
                }
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => break,
        }
    }
    assert!(saw_close, "the slow member got a Close naming the reason");
    s.stop().await;
}

// ------------------------------------------------------------------ SSE and long polling

#[tokio::test]
async fn server_sent_events_edges() {
    let s = server().await;
    let token = s.token().await;
    let url = format!("{}?id={token}", s.base);
    let response = s
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert!(response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    let mut body = response.bytes_stream();
    assert_eq!(
        &body.next().await.unwrap().unwrap()[..],
        b":\r\n",
        "the opening comment, at once"
    );
    // A second GET on the same connection is 409.
    let second = s
        .http
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);
    // A messagepack handshake is refused on SSE (text only).
    let refused_token = s.token().await;
    let refused_url = format!("{}?id={refused_token}", s.base);
    let refused = s
        .http
        .get(&refused_url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut refused_body = refused.bytes_stream();
    refused_body.next().await;
    s.http
        .post(&refused_url)
        .body("{\"protocol\":\"messagepack\",\"version\":1}\u{1e}")
        .send()
        .await
        .unwrap();
    let event = String::from_utf8(refused_body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(
        event.contains("does not support 'Binary' transfer format"),
        "{event}"
    );
    // The handshake by POST; the reply arrives as an event. A payload with a newline is split
    // into several data lines.
    assert_eq!(
        s.http
            .post(&url)
            .body("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap(),
        "data: {}\u{1e}\r\n\r\n"
    );
    s.http
        .post(&url)
        .body(invocation("1", "JoinGroup", json!(["app:sse"])))
        .send()
        .await
        .unwrap();
    let event = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert_eq!(
        event,
        "data: {\"type\":3,\"invocationId\":\"1\",\"result\":null}\u{1e}\r\n\r\n"
    );
    // Ending the GET disposes the connection: a later POST is 404.
    drop(body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.http
            .post(&url)
            .body("{\"type\":6}\u{1e}")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn long_polling_edges() {
    let s = server_with(|cli| {
        cli.signalr.long_poll_secs = Some(1);
        cli.signalr.disconnect_timeout_secs = Some(1);
    })
    .await;
    let token = s.token().await;
    let url = format!("{}?id={token}&_=1", s.base);
    // The first poll answers at once, empty.
    let first = s.http.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    assert_eq!(first.headers()["expires"], "Thu, 01 Jan 1970 00:00:00 GMT");
    assert!(first.bytes().await.unwrap().is_empty());
    s.http
        .post(&url)
        .body(format!(
            "{{\"protocol\":\"json\",\"version\":1}}\u{1e}{}",
            invocation("1", "JoinGroup", json!(["app:lp"]))
        ))
        .send()
        .await
        .unwrap();
    // Everything queued comes in one poll; no pings ever.
    let poll = s.http.get(&url).send().await.unwrap();
    assert_eq!(poll.status(), 200);
    assert_eq!(poll.headers()["content-type"], "application/octet-stream");
    let body = String::from_utf8(poll.bytes().await.unwrap().to_vec()).unwrap();
    assert_eq!(
        body,
        "{}\u{1e}{\"type\":3,\"invocationId\":\"1\",\"result\":null}\u{1e}"
    );
    // An idle poll answers 200 empty at the poll timeout.
    let idle = s.http.get(&url).send().await.unwrap();
    assert_eq!(idle.status(), 200);
    assert!(idle.bytes().await.unwrap().is_empty());
    // A newer poll completes the older one with 204.
    let older = tokio::spawn(s.http.get(&url).send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let newer = tokio::spawn(s.http.get(&url).send());
    assert_eq!(older.await.unwrap().unwrap().status(), 204);
    // DELETE: 202, the pending poll 204, then the id is gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.http.delete(&url).send().await.unwrap().status(), 202);
    assert_eq!(newer.await.unwrap().unwrap().status(), 204);
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 404);

    // A client that stops polling is disposed after the disconnect timeout.
    let token = s.token().await;
    let url = format!("{}?id={token}", s.base);
    s.http.get(&url).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(s.http.get(&url).send().await.unwrap().status(), 404);
    // DELETE on a WebSocket connection is 400.
    let token = s.token().await;
    let (_socket, _) = tokio_tungstenite::connect_async(s.ws_url(&format!("?id={token}")))
        .await
        .unwrap();
    assert_eq!(
        s.http
            .delete(format!("{}?id={token}", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    s.stop().await;
}
