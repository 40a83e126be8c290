//! What the cluster tests share: a node's config, waiting for `/readyz`, REST calls as the
//! server, and channel messages. Each test file includes `collections_support` beside this.

#![allow(dead_code)]

use super::collections_support::{keys_config, Hub, Server, SERVER_KEY};
use serde_json::{json, Value};
use std::time::Duration;

/// The machine's Redis (or `RTHUB_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    std::env::var("RTHUB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh key prefix: one cluster per test, so tests share a Redis.
pub fn prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// The test keys, `[cluster]` on `redis` under `prefix`, and `extra` lines for `[cluster]`.
pub fn node_config(redis: &str, prefix: &str, extra: &str) -> String {
    format!(
        "{}\n[cluster]\nredis = \"{redis}\"\nprefix = \"{prefix}\"\n{extra}",
        keys_config()
    )
}

/// Wait until `/readyz` says `status` (with a 200: `ready` or `degraded`); its body.
pub async fn wait_for(node: &Server, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..400 {
        let (code, body) = node.get("/readyz").await;
        if code == 200 && body["status"] == status {
            return body;
        }
        last = json!({"code": code, "body": body});
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/readyz never said {status}; last {last}");
}

/// `POST path` with the server key; the status and the JSON body (`null` if none).
pub async fn as_server(node: &Server, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(node.url(path))
        .header("x-apikey", SERVER_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The next `message` invocation's argument (other messages are skipped).
pub async fn next_channel_message(hub: &mut Hub) -> Value {
    loop {
        let message = hub.next_message().await;
        if message["target"] == "message" {
            return message["arguments"][0].clone();
        }
    }
}
