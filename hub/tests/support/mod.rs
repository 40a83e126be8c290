//! A hub served on a local port and a raw JSON-protocol WebSocket client for it: the frames
//! are checked as the official client would read them.

use futures_util::{SinkExt, StreamExt};
use hub::HubServer;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const RS: char = '\u{1e}';

/// Serve `hub` at `path` (behind `hub::HubPaths` for that path); returns the origin.
pub async fn serve(hub: &HubServer, path: &'static str) -> String {
    use tower::ServiceExt as _;
    let paths = hub::HubPaths::new([path]);
    let router = axum::Router::new().nest(path, hub.endpoint(Default::default()));
    let app = router.map_request(move |request| paths.rewrite(request));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        let _ = axum::serve(listener, service).await;
    });
    origin
}

pub struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: Vec<Value>,
}

impl Client {
    /// Connect without negotiate (`skipNegotiation`) and do the JSON handshake.
    pub async fn connect(url: &str, headers: &[(&'static str, &str)]) -> Self {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut client = Self {
            socket,
            pending: Vec::new(),
        };
        client
            .send_raw(&format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
            .await;
        assert_eq!(client.next().await, serde_json::json!({}));
        client
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.socket.send(Message::text(text)).await.unwrap();
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(&format!("{message}{RS}")).await;
    }

    /// The next message that is not a Ping; `Null` when the socket closed.
    pub async fn next(&mut self) -> Value {
        loop {
            if !self.pending.is_empty() {
                let message = self.pending.remove(0);
                if message["type"] == 6 {
                    continue;
                }
                return message;
            }
            let frame = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a message within 5 s");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    for record in text.split(RS).filter(|r| !r.is_empty()) {
                        self.pending.push(serde_json::from_str(record).unwrap());
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Value::Null,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Invoke `target` and return its Completion.
    pub async fn invoke(&mut self, target: &str, arguments: Value) -> Value {
        self.send(serde_json::json!({
            "type": 1, "invocationId": "1", "target": target, "arguments": arguments
        }))
        .await;
        self.next().await
    }
}
