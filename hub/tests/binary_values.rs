//! MessagePack `bin` and timestamps through hub methods, in raw frames: what a MessagePack
//! client sends comes back as it was sent, and JSON clients get base64 and ISO 8601 text.

mod support;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{stream, SinkExt, StreamExt};
use hub::router::{DirectMessage, Outbound, Payload, Scope, Target};
use hub::{Caller, HubError, HubMethods, HubServer, HubValue, Timestamp};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::{serve, Client};
use tokio_tungstenite::tungstenite::Message;

fn methods() -> HubMethods {
    HubMethods::new()
        .method("EchoBytes", |_: Caller, (data,): (Bytes,)| async move {
            Ok::<_, HubError>(data)
        })
        .method("EchoVec", |_: Caller, (data,): (Vec<u8>,)| async move {
            Ok::<_, HubError>(data)
        })
        .method("EchoTime", |_: Caller, (at,): (DateTime<Utc>,)| async move {
            Ok::<_, HubError>(Timestamp::from(at))
        })
        .method("Echo", |_: Caller, (value,): (HubValue,)| async move {
            Ok::<_, HubError>(value)
        })
        .stream("Chunks", |_: Caller, (n,): (u8,)| {
            stream::iter((0..n).map(|i| Ok::<_, HubError>(Bytes::from(vec![i; 2]))))
        })
}

/// A raw MessagePack client: the handshake, then length-prefixed message bodies.
struct MessagePackClient {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pending: Vec<u8>,
}

impl MessagePackClient {
    async fn connect(url: &str) -> Self {
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        socket
            .send(Message::binary(
                b"{\"protocol\":\"messagepack\",\"version\":1}\x1e".to_vec(),
            ))
            .await
            .unwrap();
        let mut client = Self {
            socket,
            pending: Vec::new(),
        };
        client.fill().await;
        assert!(
            client.pending.starts_with(b"{}\x1e"),
            "{:?}",
            client.pending
        );
        client.pending.drain(..3);
        client
    }

    async fn fill(&mut self) {
        let frame = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
            .await
            .expect("a frame within 5 s");
        match frame {
            Some(Ok(Message::Binary(data))) => self.pending.extend_from_slice(&data),
            Some(Ok(Message::Text(text))) => self.pending.extend_from_slice(text.as_bytes()),
            other => panic!("the socket ended: {other:?}"),
        }
    }

    async fn send(&mut self, body: &[u8]) {
        assert!(body.len() < 128, "one-byte prefixes only");
        let mut frame = vec![body.len() as u8];
        frame.extend_from_slice(body);
        self.socket.send(Message::binary(frame)).await.unwrap();
    }

    /// The next message body that is not a Ping.
    async fn next(&mut self) -> Vec<u8> {
        loop {
            while self.pending.is_empty() {
                self.fill().await;
            }
            let length = usize::from(self.pending[0]);
            assert!(length < 128, "one-byte prefixes only");
            while self.pending.len() < 1 + length {
                self.fill().await;
            }
            let body: Vec<u8> = self.pending.drain(..1 + length).skip(1).collect();
            if body != [0x91, 0x06] {
                return body;
            }
        }
    }

    /// Invoke `target` (at most 15 characters) with the encoded `arguments` array; returns the
    /// Completion's result bytes after checking its header.
    async fn invoke(&mut self, target: &str, arguments: &[u8]) -> Vec<u8> {
        let mut body = vec![0x96, 0x01, 0x80, 0xa1, b'1', 0xa0 | target.len() as u8];
        body.extend_from_slice(target.as_bytes());
        body.extend_from_slice(arguments);
        body.push(0x90);
        self.send(&body).await;
        let reply = self.next().await;
        // [3, {}, "1", 3 (a result), …]
        assert_eq!(
            reply[..6],
            [0x95, 0x03, 0x80, 0xa1, b'1', 0x03],
            "{reply:x?}"
        );
        reply[6..].to_vec()
    }
}

async fn server() -> (HubServer, String) {
    let hub = HubServer::builder(methods())
        .protocol(Arc::new(hub::protocol::MessagePackHubProtocol))
        .build();
    let origin = serve(&hub, "/hub").await;
    (hub, format!("ws://{origin}/hub"))
}

const BIN: &[u8] = &[0xc4, 0x03, 0x01, 0x02, 0xff];
/// `new Date(1700000000123)` as the JS client writes it: a 64-bit timestamp.
const TIME64: &[u8] = &[0xd7, 0xff, 0x1d, 0x53, 0x53, 0x00, 0x65, 0x53, 0xf1, 0x00];
/// Whole seconds: the 32-bit form.
const TIME32: &[u8] = &[0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00];
/// Before 1970: the 96-bit form.
const TIME96: &[u8] = &[
    0xc7, 0x0c, 0xff, 0x1d, 0xcd, 0x65, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

fn one(argument: &[u8]) -> Vec<u8> {
    [&[0x91], argument].concat()
}

#[tokio::test]
async fn a_messagepack_client_gets_bin_and_timestamps_back() {
    let (_hub, url) = server().await;
    let mut client = MessagePackClient::connect(&url).await;
    assert_eq!(client.invoke("EchoBytes", &one(BIN)).await, BIN);
    assert_eq!(client.invoke("EchoVec", &one(BIN)).await, BIN);
    for time in [TIME64, TIME32, TIME96] {
        assert_eq!(client.invoke("EchoTime", &one(time)).await, time);
    }
    // A HubValue parameter keeps them wherever they are.
    let nested = [&[0x92, 0x81, 0xa1, b'b'], BIN, TIME64].concat();
    assert_eq!(client.invoke("Echo", &one(&nested)).await, nested);
    // A base64 string binds to bytes as well, and they go back as bin.
    let text = [0xa4, b'A', b'Q', b'L', b'/'];
    assert_eq!(client.invoke("EchoBytes", &one(&text)).await, BIN);

    // Stream items of bytes are bin.
    client
        .send(&[
            0x96, 0x04, 0x80, 0xa1, b'2', 0xa6, b'C', b'h', b'u', b'n', b'k', b's', 0x91, 0x02,
            0x90,
        ])
        .await;
    for i in 0..2 {
        assert_eq!(
            client.next().await,
            [0x94, 0x02, 0x80, 0xa1, b'2', 0xc4, 0x02, i, i]
        );
    }
    assert_eq!(client.next().await, [0x94, 0x03, 0x80, 0xa1, b'2', 0x02]);
}

#[tokio::test]
async fn the_routers_binary_payload_is_bin_for_messagepack_and_base64_for_json() {
    let (hub, url) = server().await;
    let mut messagepack = MessagePackClient::connect(&url).await;
    let mut json = Client::connect(&url, &[]).await;
    let message = Outbound::Direct(DirectMessage {
        data: Payload::Binary(Bytes::from_static(&[1, 2, 255])),
    });
    hub.router()
        .send(Target::All, Scope::Local, Arc::new(message));
    let mut expected = vec![0x96, 0x01, 0x80, 0xc0, 0xa7];
    expected.extend_from_slice(b"message");
    expected.extend_from_slice(&[0x91, 0x84, 0xa5]);
    expected.extend_from_slice(b"group");
    expected.push(0xc0);
    expected.push(0xa4);
    expected.extend_from_slice(b"data");
    expected.extend_from_slice(BIN);
    expected.push(0xaa);
    expected.extend_from_slice(b"fromUserId");
    expected.extend_from_slice(&[0xc0, 0xb0]);
    expected.extend_from_slice(b"fromConnectionId");
    expected.extend_from_slice(&[0xc0, 0x90]);
    assert_eq!(messagepack.next().await, expected);
    assert_eq!(json.next().await["arguments"][0]["data"], json!("AQL/"));
}

#[tokio::test]
async fn a_json_client_gets_base64_and_iso_text() {
    let (_hub, url) = server().await;
    let mut client = Client::connect(&url, &[]).await;
    let reply = client.invoke("EchoBytes", json!(["AQL/"])).await;
    assert_eq!(reply["result"], json!("AQL/"));
    let reply = client.invoke("EchoVec", json!([[1, 2, 255]])).await;
    assert_eq!(reply["result"], json!("AQL/"), "as .NET writes a byte[]");
    let reply = client
        .invoke("EchoTime", json!(["2023-11-14T23:13:20.1234567+01:00"]))
        .await;
    assert_eq!(reply["result"], json!("2023-11-14T22:13:20.1234567Z"));
    let reply = client.invoke("EchoTime", json!(["not a date"])).await;
    assert_eq!(
        reply["error"],
        json!("Failed to invoke 'EchoTime' due to an error on the server.")
    );
}
