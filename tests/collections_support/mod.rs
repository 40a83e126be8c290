//! A server with collections for a test: SQLite in a fresh temporary file, or PostgreSQL in a
//! fresh database of its own (created on the server named by `RTHUB_TEST_POSTGRES_URL`, else
//! 127.0.0.1:5432; `scripts/test` makes sure one is reachable), dropped afterwards.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use rthub::{Cli, Config, RunningServer};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub const SCHEMA: &str = r#"{ "collections": [
  { "name": "customers",
    "properties": [
      { "name": "name", "type": "string", "required": true, "maxLength": 20 },
      { "name": "vip", "type": "boolean", "default": false } ],
    "access": [ { "method": "GET", "roleNames": ["_EVERYONE"] },
                { "method": "POST", "roleNames": ["_EVERYONE"] },
                { "method": "PUT", "roleNames": ["_EVERYONE"] },
                { "method": "PATCH", "roleNames": ["_EVERYONE"] },
                { "method": "DELETE", "roleNames": ["_EVERYONE"] },
                { "method": "LISTEN", "roleNames": ["_EVERYONE"] } ] },
  { "name": "orders",
    "properties": [
      { "name": "customer", "type": "lookup", "target": "customers" },
      { "name": "total", "type": "decimal", "min": 0 },
      { "name": "note", "type": "string" } ],
    "access": [ { "method": "GET", "roleNames": ["_EVERYONE"] },
                { "method": "POST", "roleNames": ["_EVERYONE"] },
                { "method": "PATCH", "roleNames": ["_EVERYONE"] },
                { "method": "DELETE", "roleNames": ["_EVERYONE"] },
                { "method": "LISTEN", "roleNames": ["_EVERYONE"] } ] },
  { "name": "secrets",
    "properties": [ { "name": "value", "type": "string" } ],
    "access": [] },
  { "name": "people",
    "properties": [ { "name": "name", "type": "string" }, { "name": "ssn", "type": "string" } ],
    "access": [] },
  { "name": "notes",
    "properties": [
      { "name": "text", "type": "string" },
      { "name": "person", "type": "lookup", "target": "people" },
      { "name": "stock", "type": "integer" },
      { "name": "extra", "type": "object" } ],
    "access": [ { "method": "GET", "roleNames": ["_EVERYONE"] },
                { "method": "POST", "roleNames": ["_EVERYONE"] },
                { "method": "PATCH", "roleNames": ["_EVERYONE"] } ] } ] }"#;

/// The server key of [`start`]'s server.
pub const SERVER_KEY: &str = "test-server-key-0123456789";
/// A client key in [`keys_config`].
pub const CLIENT_KEY: &str = "test-client-key-0123456789";
/// The HS256 secret of [`keys_config`], for [`user_token`].
pub const JWT_SECRET: &str = "test-jwt-secret-of-at-least-32-bytes";

/// A config with users' JWTs ([`user_token`]), [`SERVER_KEY`] and [`CLIENT_KEY`].
pub fn keys_config() -> String {
    format!(
        "[auth]\njwt_secret = \"{JWT_SECRET}\"\n\n[[api_keys]]\nkey = \"{SERVER_KEY}\"\nrole = \"server\"\n\n[[api_keys]]\nkey = \"{CLIENT_KEY}\"\nrole = \"client\"\n"
    )
}

/// A user's token for [`keys_config`], valid for ten minutes.
pub fn user_token(sub: &str) -> String {
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A completion's result, failing on an error completion.
pub fn ok(completion: &Value) -> &Value {
    assert!(completion.get("error").is_none(), "{completion}");
    &completion["result"]
}

/// Each scenario as two tests, one per database.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Db::Postgres).await })*
        }
    };
}

/// Run `test` against a fresh server on a fresh database of kind `db`, then clean up.
pub async fn with_server<F, Fut>(db: Db, test: F)
where
    F: FnOnce(Server) -> Fut,
    Fut: std::future::Future<Output = Server>,
{
    let database = TestDb::new(db).await;
    let server = start(&database.url).await;
    let server = test(server).await;
    server.stop().await;
    database.drop_it().await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    Database { admin: String, name: String },
}

pub fn admin_url() -> String {
    std::env::var("RTHUB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(db: Db) -> Self {
        let name = format!("rthub_test_{}", uuid::Uuid::new_v4().simple());
        match db {
            Db::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDb {
                    url: format!("sqlite://{}", path.display()),
                    cleanup: Cleanup::File(path),
                }
            }
            Db::Postgres => {
                let admin = admin_url();
                let mut conn = sqlx_connect(&admin).await;
                sqlx_exec(&mut conn, &format!("CREATE DATABASE {name}")).await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    cleanup: Cleanup::Database { admin, name },
                }
            }
        }
    }

    pub async fn drop_it(self) {
        match self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Database { admin, name } => {
                let mut conn = sqlx_connect(&admin).await;
                sqlx_exec(
                    &mut conn,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
            }
        }
    }
}

async fn sqlx_connect(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {url} is not reachable ({e}); run ./scripts/test, or set RTHUB_TEST_POSTGRES_URL")
    })
}

pub async fn sqlx_exec(conn: &mut sqlx::PgConnection, sql: &str) {
    sqlx::raw_sql(sql).execute(conn).await.unwrap();
}

pub struct Server {
    pub server: RunningServer,
    pub base: String,
    pub http: reqwest::Client,
    schema: PathBuf,
    config: Option<PathBuf>,
}

pub async fn start(url: &str) -> Server {
    start_configured(url, None).await
}

/// A server with `config` (TOML, as `--config` reads it) beside the test schema; without
/// one, the server key is [`SERVER_KEY`].
pub async fn start_configured(url: &str, config: Option<&str>) -> Server {
    start_on(url, config, "127.0.0.1:0").await
}

/// [`start_configured`] listening on `listen` (the base URL stays the address bound).
pub async fn start_on(url: &str, config: Option<&str>, listen: &str) -> Server {
    let id = uuid::Uuid::new_v4().simple();
    let schema = std::env::temp_dir().join(format!("rthub_schema_{id}.json"));
    std::fs::write(&schema, SCHEMA).unwrap();
    let config = config.map(|text| {
        let path = std::env::temp_dir().join(format!("rthub_config_{id}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    });
    let cli = Cli {
        listen: Some(listen.parse().unwrap()),
        database: Some(url.to_owned()),
        schema: Some(schema.clone()),
        server_key: config.is_none().then(|| SERVER_KEY.into()),
        config: config.clone(),
        ..Default::default()
    };
    let server = RunningServer::start(Config::load(cli).unwrap())
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    Server {
        server,
        base,
        http: reqwest::Client::new(),
        schema,
        config,
    }
}

impl Server {
    pub async fn stop(self) {
        self.server.shutdown().await.unwrap();
        let _ = std::fs::remove_file(&self.schema);
        if let Some(config) = &self.config {
            let _ = std::fs::remove_file(config);
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `GET path` with `x-apikey: key` when given.
    pub async fn get_as(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(key) = key {
            request = request.header("x-apikey", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A SignalR JSON connection over a raw WebSocket, handshake done.
    pub async fn hub(&self) -> Hub {
        self.hub_as(None).await
    }

    /// [`Self::hub`] with a bearer token (a user's JWT, say).
    pub async fn hub_as(&self, bearer: Option<&str>) -> Hub {
        Hub::connect(&self.base, bearer).await
    }
}

impl Hub {
    /// A SignalR JSON connection to the rthub at `base` (`http://host:port`), handshake done.
    pub async fn connect(base: &str, bearer: Option<&str>) -> Hub {
        let http = reqwest::Client::new();
        let mut negotiate = http.post(format!(
            "{base}/api/_rt/signalr/negotiate?negotiateVersion=1"
        ));
        if let Some(token) = bearer {
            negotiate = negotiate.bearer_auth(token);
        }
        let negotiated: Value = negotiate.send().await.unwrap().json().await.unwrap();
        let token = negotiated["connectionToken"].as_str().unwrap();
        let mut ws = format!(
            "{}/api/_rt/signalr?id={token}",
            base.replacen("http", "ws", 1)
        );
        if let Some(bearer) = bearer {
            ws.push_str(&format!("&access_token={bearer}"));
        }
        let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
        socket
            .send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}"))
            .await
            .unwrap();
        let mut hub = Hub {
            socket,
            inbox: Default::default(),
            connection_id: negotiated["connectionId"].as_str().unwrap().to_owned(),
            next_id: 0,
        };
        assert_eq!(hub.next_message().await, json!({}), "handshake reply");
        hub
    }
}

pub struct Hub {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Messages read but not yet taken, pings dropped.
    inbox: std::collections::VecDeque<Value>,
    pub connection_id: String,
    next_id: u64,
}

impl Hub {
    /// Read one frame into the inbox, waiting at most `wait`; false on timeout.
    async fn read_frame(&mut self, wait: Duration) -> bool {
        let Ok(frame) = tokio::time::timeout(wait, self.socket.next()).await else {
            return false;
        };
        match frame {
            Some(Ok(Message::Text(text))) => {
                for record in text.split('\u{1e}').filter(|r| !r.is_empty()) {
                    let message: Value = serde_json::from_str(record).unwrap();
                    if message["type"] != 6 {
                        self.inbox.push_back(message);
                    }
                }
                true
            }
            other => panic!("the hub connection ended: {other:?}"),
        }
    }

    /// The next hub message other than a Ping.
    pub async fn next_message(&mut self) -> Value {
        loop {
            if let Some(message) = self.inbox.pop_front() {
                return message;
            }
            assert!(
                self.read_frame(Duration::from_secs(10)).await,
                "no hub message within 10 s"
            );
        }
    }

    /// Nothing but pings for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(tokio::time::Instant::now()) {
            if let Some(message) = self.inbox.front() {
                panic!("expected nothing, got {message}");
            }
            if !self.read_frame(left).await {
                break;
            }
        }
        if let Some(message) = self.inbox.front() {
            panic!("expected nothing, got {message}");
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(format!("{message}\u{1e}")))
            .await
            .unwrap();
    }

    /// Invoke and return the Completion; other messages stay in the inbox.
    pub async fn invoke(&mut self, target: &str, arguments: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments}))
            .await;
        loop {
            let found = self
                .inbox
                .iter()
                .position(|m| m["type"] == 3 && m["invocationId"] == id);
            if let Some(at) = found {
                return self.inbox.remove(at).unwrap();
            }
            assert!(
                self.read_frame(Duration::from_secs(10)).await,
                "no completion within 10 s"
            );
        }
    }

    /// The next `change` message's payload (other messages are skipped).
    pub async fn next_change(&mut self) -> Value {
        loop {
            let message = self.next_message().await;
            if message["type"] == 1 && message["target"] == "change" {
                return message["arguments"][0].clone();
            }
        }
    }
}
