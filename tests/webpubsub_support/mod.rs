//! A real rthub for the Web PubSub REST tests: requests signed as `@azure/web-pubsub` signs
//! them, and SignalR clients on raw WebSockets that observe what the API does.

#![allow(dead_code)] // each test binary that includes this uses a part of it

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rthub::{Cli, Config, RunningServer};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A request body: its content type and bytes.
pub type Body<'a> = Option<(&'a str, Vec<u8>)>;

/// The server API key, and so (by default) the Web PubSub access key.
pub const KEY: &str = "wps-rest-tests-server-key-0123";
pub const JWT_SECRET: &str = "wps-rest-tests-jwt-secret-0123456789";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Server {
    server: RunningServer,
    pub origin: String,
    pub http: reqwest::Client,
    dir: std::path::PathBuf,
}

pub async fn server_with(server_key: Option<&str>) -> Server {
    let dir = std::env::temp_dir().join(format!("rthub_wpsrest_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cli = Cli {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        database: Some(format!("sqlite://{}", dir.join("db").display())),
        server_key: server_key.map(str::to_owned),
        jwt_secret: Some(JWT_SECRET.into()),
        ..Default::default()
    };
    let server = RunningServer::start(Config::load(cli).unwrap())
        .await
        .unwrap();
    Server {
        origin: format!("http://{}", server.local_addr()),
        server,
        http: reqwest::Client::new(),
        dir,
    }
}

pub async fn server() -> Server {
    server_with(Some(KEY)).await
}

/// A REST token as `@azure/web-pubsub` signs one: HS256 with `key`, `aud` = `aud`.
pub fn sdk_token(key: &str, aud: &str, exp: u64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"aud": aud, "exp": exp, "iat": exp.saturating_sub(3600)}),
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap()
}

pub fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

pub fn user_token(user: &str) -> String {
    let claims = json!({"sub": user, "exp": in_an_hour()});
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

impl Server {
    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// `method path_and_query` with a body, signed as the SDK signs (the full URL as `aud`).
    pub async fn call(&self, method: &str, path_and_query: &str, body: Body<'_>) -> (u16, String) {
        let url = format!("{}{path_and_query}", self.origin);
        let token = sdk_token(KEY, &url, in_an_hour());
        self.raw(
            method,
            path_and_query,
            Some(&format!("Bearer {token}")),
            body,
        )
        .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        body: Body<'_>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path_and_query}", self.origin));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn send_json(&self, path: &str, body: Value) -> u16 {
        let body = Some(("application/json", body.to_string().into_bytes()));
        self.call("POST", path, body).await.0
    }

    /// A SignalR connection over WebSockets past its JSON handshake, as `user` if given: its
    /// connection id and socket.
    pub async fn signalr(&self, user: Option<&str>) -> (String, Socket) {
        let base = format!("{}/api/_rt/signalr", self.origin);
        let mut request = self
            .http
            .post(format!("{base}/negotiate?negotiateVersion=1"));
        let query = match user {
            Some(user) => {
                let token = user_token(user);
                request = request.bearer_auth(&token);
                format!("&access_token={token}")
            }
            None => String::new(),
        };
        let negotiated: Value = request.send().await.unwrap().json().await.unwrap();
        let token = negotiated["connectionToken"].as_str().unwrap();
        let url = format!("{}?id={token}{query}", base.replacen("http", "ws", 1));
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let handshake = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
        socket.send(Message::text(handshake)).await.unwrap();
        assert_eq!(next_text(&mut socket).await, "{}\u{1e}");
        let id = negotiated["connectionId"].as_str().unwrap().to_owned();
        (id, socket)
    }
}

pub async fn next_text(socket: &mut Socket) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame within 10 s");
    match frame {
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The next hub message that is not a ping.
pub async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let text = next_text(socket).await;
        let message = text
            .split('\u{1e}')
            .filter(|r| !r.is_empty())
            .map(|r| serde_json::from_str::<Value>(r).unwrap())
            .find(|m| m["type"] != 6);
        if let Some(message) = message {
            return message;
        }
    }
}

/// The argument of the next `message` invocation.
pub async fn next_channel_message(socket: &mut Socket) -> Value {
    let message = next_message(socket).await;
    assert_eq!(message["target"], "message", "{message}");
    message["arguments"][0].clone()
}

/// After something that must not reach `socket`, a marker sent to its connection `id` is the
/// next thing it gets (one connection's messages arrive in order).
pub async fn nothing_before_marker(s: &Server, id: &str, socket: &mut Socket) {
    let path = format!("/api/hubs/app/connections/{id}/:send");
    assert_eq!(s.send_json(&path, json!("marker")).await, 202);
    let got = next_channel_message(socket).await;
    assert_eq!(got["data"], "marker", "got {got} before the marker");
}

pub async fn expect_close(socket: &mut Socket) -> Value {
    let message = next_message(socket).await;
    assert_eq!(message["type"], 7, "a Close message: {message}");
    message
}

/// A Web PubSub connection at `url` speaking `json.webpubsub.azure.v1`: its connection id (from
/// `system/connected`) and socket.
pub async fn webpubsub(url: &str) -> (String, Socket) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    let subprotocol = "json.webpubsub.azure.v1";
    request
        .headers_mut()
        .insert("sec-websocket-protocol", subprotocol.parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], subprotocol);
    let connected: Value = serde_json::from_str(&next_text(&mut socket).await).unwrap();
    assert_eq!(connected["event"], "connected", "{connected}");
    let id = connected["connectionId"].as_str().unwrap().to_owned();
    (id, socket)
}

/// The next Web PubSub message of `socket`.
pub async fn next_webpubsub(socket: &mut Socket) -> Value {
    serde_json::from_str(&next_text(socket).await).unwrap()
}
