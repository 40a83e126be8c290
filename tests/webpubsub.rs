//! The Web PubSub client endpoint with raw frames: what the official clients do (checked
//! again with them in interop-tests/webpubsub-*.test.mjs) and the edges no client sends.

mod collections_support;

use collections_support::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const JSON: &str = "json.webpubsub.azure.v1";
const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

struct Wps {
    socket: Socket,
    connection_id: String,
    reconnection_token: Option<String>,
    user_id: Value,
}

async fn open(
    url: &str,
    subprotocol: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(subprotocol).unwrap(),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        subprotocol,
        "the subprotocol is echoed"
    );
    Ok(socket)
}

async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a message, got {other:?}"),
        }
    }
}

/// The close code the server ends with, after any messages (returned).
async fn closed(socket: &mut Socket) -> (u16, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) => before.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(Some(close)))) => return (close.code.into(), before),
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

impl Wps {
    async fn connect(url: &str, subprotocol: &str) -> Self {
        let mut socket = open(url, subprotocol).await.unwrap();
        let connected = next(&mut socket).await;
        assert_eq!(connected["type"], "system", "{connected}");
        assert_eq!(connected["event"], "connected", "{connected}");
        Wps {
            connection_id: connected["connectionId"].as_str().unwrap().to_owned(),
            reconnection_token: connected["reconnectionToken"].as_str().map(str::to_owned),
            user_id: connected["userId"].clone(),
            socket,
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    async fn next(&mut self) -> Value {
        next(&mut self.socket).await
    }

    /// Send a request with `ackId` and return its ack (other messages before it fail).
    async fn request(&mut self, mut message: Value, ack_id: u64) -> Value {
        message["ackId"] = json!(ack_id);
        self.send(message).await;
        let ack = self.next().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["ackId"], ack_id, "{ack}");
        ack
    }

    async fn silent(&mut self) {
        let quiet = tokio::time::timeout(Duration::from_millis(300), self.socket.next()).await;
        assert!(quiet.is_err(), "expected nothing, got {quiet:?}");
    }
}

/// A client URL from `GET /api/_rt/ws` for `key` (x-apikey) or `bearer`.
async fn access_url(
    server: &Server,
    key: Option<&str>,
    bearer: Option<&str>,
    query: &str,
) -> Value {
    let mut request = server
        .http
        .get(server.url(&format!("/api/_rt/ws{query}")))
        .header("accept", "application/json");
    if let Some(key) = key {
        request = request.header("x-apikey", key);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// An SDK-style token: signed with the access key (the server key), Azure's audience.
fn sdk_token(server: &Server, sub: Option<&str>, roles: &[&str], groups: &[&str]) -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let aud = format!("{}/client/hubs/app", server.base);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"aud": aud, "exp": exp, "sub": sub, "role": roles, "webpubsub.group": groups}),
        &jsonwebtoken::EncodingKey::from_secret(SERVER_KEY.as_bytes()),
    )
    .unwrap()
}

fn azure_url(server: &Server, token: &str) -> String {
    format!(
        "{}/client/hubs/app?access_token={token}",
        server.base.replacen("http", "ws", 1)
    )
}

async fn with_wps<F, Fut>(test: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    let database = TestDb::new(Db::Sqlite).await;
    let config = format!("{}\n[webpubsub]\nrecovery_secs = 5\n", keys_config());
    let server = start_configured(&database.url, Some(&config)).await;
    let server = test(server).await;
    server.stop().await;
    database.drop_it().await;
}

#[tokio::test]
async fn clients_join_send_with_no_echo_and_reach_signalr_in_the_same_channel() {
    with_wps(|server| async move {
        let access = access_url(&server, None, Some(&user_token("alice")), "").await;
        let url = access["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{}/api/_rt/ws/client?access_token=", server.base.replacen("http", "ws", 1))));
        assert_eq!(access["baseUrl"], url.split('?').next().unwrap());
        let mut alice = Wps::connect(url, JSON).await;
        assert_eq!(alice.user_id, "alice");
        assert!(alice.reconnection_token.is_none(), "only the reliable protocol has one");
        let token = sdk_token(&server, Some("bob"), &["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"], &[]);
        let mut bob = Wps::connect(&azure_url(&server, &token), RELIABLE).await;
        assert!(bob.reconnection_token.is_some());
        let mut signalr = server.hub().await;
        ok(&signalr.invoke("JoinGroup", json!(["app:room"])).await);

        for (client, ack) in [(&mut alice, 1), (&mut bob, 1)] {
            let ack = client.request(json!({"type": "joinGroup", "group": "app:room"}), ack).await;
            assert_eq!(ack["success"], true, "{ack}");
        }
        let send = json!({"type": "sendToGroup", "group": "app:room", "dataType": "text", "data": "hi", "noEcho": true});
        assert_eq!(alice.request(send, 2).await["success"], true);
        alice.silent().await;
        let got = bob.next().await;
        assert_eq!(
            got,
            json!({"type": "message", "from": "group", "group": "app:room", "fromUserId": "alice",
                   "dataType": "text", "data": "hi", "sequenceId": 1})
        );
        let message = signalr.next_message().await;
        assert_eq!(message["target"], "message");
        assert_eq!(message["arguments"][0]["data"], "hi");
        assert_eq!(message["arguments"][0]["fromConnectionId"], alice.connection_id.as_str());

        ok(&signalr.invoke("SendToGroup", json!(["app:room", {"n": 1}])).await);
        let from_signalr = alice.next().await;
        assert_eq!(from_signalr["dataType"], "json");
        assert_eq!(from_signalr["data"], json!({"n": 1}));
        assert_eq!(bob.next().await["sequenceId"], 2);
        assert_eq!(signalr.next_message().await["arguments"][0]["data"], json!({"n": 1}), "its own echo");

        let (status, _) = server
            .call(reqwest::Method::POST, "/api/_rt/send", Some(json!({"channel": "room", "body": [1]})))
            .await;
        assert_eq!(status, 200);
        let from_rest = alice.next().await;
        assert_eq!((from_rest["data"].clone(), from_rest["fromUserId"].clone()), (json!([1]), Value::Null));
        assert_eq!(bob.next().await["sequenceId"], 3);
        assert_eq!(signalr.next_message().await["arguments"][0]["data"], json!([1]));
        alice.send(json!({"type": "ping"})).await;
        assert_eq!(alice.next().await, json!({"type": "pong"}));
        let binary = json!({"type": "sendToGroup", "group": "app:room", "dataType": "binary", "data": "AAE=", "noEcho": true});
        assert_eq!(alice.request(binary, 3).await["success"], true);
        let got = bob.next().await;
        assert_eq!((got["dataType"].clone(), got["data"].clone()), (json!("binary"), json!("AAE=")));
        assert_eq!(got["sequenceId"], 4);
        bob.send(json!({"type": "sequenceAck", "sequenceId": 4})).await;
        let left = bob.request(json!({"type": "leaveGroup", "group": "app:room"}), 2).await;
        assert_eq!(left["success"], true);
        let send = json!({"type": "sendToGroup", "group": "app:room", "data": {"after": true}, "ackId": 4});
        alice.send(send).await;
        assert_eq!(alice.next().await["data"], json!({"after": true}), "echo is on by default, before the ack");
        assert_eq!(alice.next().await, json!({"type": "ack", "ackId": 4, "success": true}));
        bob.silent().await;
        server
    })
    .await;
}

#[tokio::test]
async fn refusals_are_acks_and_the_connection_stays_usable() {
    with_wps(|server| async move {
        let url = access_url(&server, None, Some(&user_token("carol")), "").await;
        let mut carol = Wps::connect(url["url"].as_str().unwrap(), JSON).await;
        let cases = [
            (
                json!({"type": "joinGroup", "group": "app:room:1"}),
                "Forbidden",
                "private",
            ),
            (
                json!({"type": "joinGroup", "group": "app:customers"}),
                "Forbidden",
                "collection",
            ),
            (
                json!({"type": "joinGroup", "group": "nope"}),
                "BadRequest",
                "app:",
            ),
            (
                json!({"type": "joinGroup", "group": "app:sp ace"}),
                "BadRequest",
                "letters",
            ),
            (
                json!({"type": "sendToGroup", "group": "app:room:1", "data": 1}),
                "Forbidden",
                "private",
            ),
        ];
        for (n, (request, name, says)) in cases.into_iter().enumerate() {
            let ack = carol.request(request.clone(), n as u64 + 1).await;
            assert_eq!(ack["success"], false, "{request}: {ack}");
            assert_eq!(ack["error"]["name"], name, "{request}: {ack}");
            let message = ack["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{request}: {message}");
        }
        // A failed request may be retried with its id; a successful one is a duplicate.
        let join = json!({"type": "joinGroup", "group": "app:lobby"});
        assert_eq!(carol.request(join.clone(), 1).await["success"], true);
        let again = carol.request(join, 1).await;
        assert_eq!(again["error"]["name"], "Duplicate", "{again}");

        // Roles from an SDK token: one group to join, none to send to.
        let token = sdk_token(
            &server,
            None,
            &["webpubsub.joinLeaveGroup.app:a"],
            &["app:auto"],
        );
        let mut limited = Wps::connect(&azure_url(&server, &token), JSON).await;
        assert_eq!(limited.user_id, Value::Null);
        let a = limited
            .request(json!({"type": "joinGroup", "group": "app:a"}), 1)
            .await;
        assert_eq!(a["success"], true, "{a}");
        let b = limited
            .request(json!({"type": "joinGroup", "group": "app:b"}), 2)
            .await;
        assert_eq!(b["error"]["name"], "Forbidden", "{b}");
        let send = limited
            .request(
                json!({"type": "sendToGroup", "group": "app:a", "data": 1}),
                3,
            )
            .await;
        assert_eq!(send["error"]["name"], "Forbidden", "{send}");
        // The token's group was joined on connect.
        let to_auto = json!({"type": "sendToGroup", "group": "app:auto", "data": "x"});
        assert_eq!(carol.request(to_auto, 10).await["success"], true);
        assert_eq!(limited.next().await["group"], "app:auto");
        // Events with no event handler are acknowledged.
        let event = json!({"type": "event", "event": "chat", "dataType": "text", "data": "x"});
        assert_eq!(limited.request(event, 4).await["success"], true);
        server
    })
    .await;
}

#[tokio::test]
async fn malformed_input_closes_with_the_services_codes() {
    with_wps(|server| async move {
        let url = access_url(&server, Some(SERVER_KEY), None, "").await;
        let url = url["url"].as_str().unwrap().to_owned();
        for (frame, code) in [
            (Message::text("not json"), 1007),
            (Message::text(r#"{"type":"teleport"}"#), 1007),
            (
                Message::text(r#"{"type":"joinGroup","group":"app:g","ackId":"one"}"#),
                1007,
            ),
            (Message::binary(vec![1, 2, 3]), 1003),
            (Message::text("x".repeat(2 * 1024 * 1024)), 1009),
        ] {
            let mut client = Wps::connect(&url, JSON).await;
            client.socket.send(frame).await.unwrap();
            let (got, before) = closed(&mut client.socket).await;
            assert_eq!(got, code);
            assert_eq!(
                before.last().map(|m| m["event"].clone()),
                Some(json!("disconnected")),
                "{before:?}"
            );
        }
        let base = server.base.replacen("http", "ws", 1);
        let refused = |result: Result<Socket, tokio_tungstenite::tungstenite::Error>| match result {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                response.status().as_u16()
            }
            other => panic!("expected a refusal, got {other:?}"),
        };
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
        assert_eq!(
            refused(
                tokio_tungstenite::connect_async(request)
                    .await
                    .map(|(s, _)| s)
            ),
            400
        );
        assert_eq!(
            refused(open(&format!("{base}/api/_rt/ws/client?access_token=x"), JSON).await),
            401
        );
        assert_eq!(
            refused(open(&format!("{base}/api/_rt/ws/client"), JSON).await),
            401
        );
        let token = sdk_token(&server, None, &[], &[]);
        assert_eq!(
            refused(
                open(
                    &format!("{base}/client/hubs/other?access_token={token}"),
                    JSON
                )
                .await
            ),
            404
        );
        server
    })
    .await;
}

#[tokio::test]
async fn a_reliable_connection_recovers_its_groups_and_unacked_messages() {
    with_wps(|server| async move {
        let url = access_url(&server, Some(SERVER_KEY), None, "?group=app:feed").await;
        let url = url["url"].as_str().unwrap().to_owned();
        let mut receiver = Wps::connect(&url, RELIABLE).await;
        let mut sender = Wps::connect(&url, JSON).await;
        let send = |n: u64| json!({"type": "sendToGroup", "group": "app:feed", "data": {"n": n}, "noEcho": true});
        for n in 1..=3 {
            assert_eq!(sender.request(send(n), n).await["success"], true);
            assert_eq!(receiver.next().await["sequenceId"], n);
        }
        receiver.send(json!({"type": "sequenceAck", "sequenceId": 1})).await;
        // Cut the socket without a Close: the connection waits for its client.
        let Wps { socket, connection_id, reconnection_token, .. } = receiver;
        let stream = socket.into_inner();
        drop(stream);
        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in 4..=5 {
            assert_eq!(sender.request(send(n), n).await["success"], true);
        }
        let token = reconnection_token.unwrap();
        let wrong = format!("{url}&awps_connection_id={connection_id}&awps_reconnection_token=wrong");
        let mut refused = open(&wrong, RELIABLE).await.unwrap();
        assert_eq!(closed(&mut refused).await.0, 1008, "a wrong token: start afresh");
        let back = format!("{url}&awps_connection_id={connection_id}&awps_reconnection_token={token}");
        let mut socket = open(&back, RELIABLE).await.unwrap();
        let connected = next(&mut socket).await;
        assert_eq!(connected["connectionId"], connection_id.as_str(), "{connected}");
        let mut got = Vec::new();
        for _ in 2..=5 {
            let message = next(&mut socket).await;
            got.push((message["sequenceId"].as_u64().unwrap(), message["data"]["n"].as_u64().unwrap()));
        }
        assert_eq!(got, [(2, 2), (3, 3), (4, 4), (5, 5)], "unacked ones again, with their ids");
        assert_eq!(sender.request(send(6), 6).await["success"], true);
        assert_eq!(next(&mut socket).await["sequenceId"], 6, "numbering goes on");
        // A connection the client closed is gone.
        socket.close(None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut late = open(&back, RELIABLE).await.unwrap();
        assert_eq!(closed(&mut late).await.0, 1008);
        server
    })
    .await;
}

#[tokio::test]
async fn listen_sends_a_collections_changes_in_the_web_pubsub_shape() {
    with_wps(|server| async move {
        let url = access_url(&server, Some(SERVER_KEY), None, "").await;
        let mut client = Wps::connect(url["url"].as_str().unwrap(), JSON).await;
        let listen = json!({"connectionId": client.connection_id, "type": "ws"});
        let (status, body) = server.post("/api/customers/_listen", listen).await;
        assert_eq!((status, body), (200, json!({"listening": true})));
        let (status, created) = server.post("/api/customers", json!({"name": "Ada"})).await;
        assert_eq!(status, 201, "{created}");
        let change = client.next().await;
        assert_eq!(change["from"], "group");
        assert_eq!(change["group"], "app:customers");
        assert_eq!(change["dataType"], "json");
        assert_eq!(change["data"]["operation"], "create");
        assert_eq!(change["data"]["data"]["name"], "Ada");
        assert_eq!(change["data"]["collection"], "customers");
        server
    })
    .await;
}

#[tokio::test]
async fn shutdown_says_goodbye_to_every_connection() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&keys_config())).await;
    let url = access_url(&server, Some(SERVER_KEY), None, "").await;
    let mut client = Wps::connect(url["url"].as_str().unwrap(), RELIABLE).await;
    let stopping = tokio::spawn(server.stop());
    let (code, before) = closed(&mut client.socket).await;
    assert_eq!(code, 1001);
    assert_eq!(before[0]["message"], "The server is shutting down.");
    drop(client);
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("the server stops")
        .unwrap();
    database.drop_it().await;
}
