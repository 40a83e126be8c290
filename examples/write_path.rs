//! Measures the collection write path on PostgreSQL: REST write throughput, and the latency
//! from a committed REST write to the `change` message at a listening client.
//!
//! Starts `rthub` on a fresh database of the PostgreSQL server named by the admin URL, then:
//! 1. closed loop: `concurrency` clients POST items for `seconds` → writes/s;
//! 2. open loop at each given rate: POSTs at fixed intervals for `seconds` while one SignalR
//!    client listens; for every write, response → change receipt (and send → receipt), p50/p99.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example write_path -- target/release/rthub postgres://postgres@127.0.0.1:5432/postgres
//! ```
//! Compare with plain INSERTs of the same document: see docs/BENCHMARKS.md for the pgbench line.

use futures_util::{SinkExt, StreamExt};
use sqlx::Connection;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

const SCHEMA: &str = r#"{"collections": [{"name": "items",
  "properties": [{"name": "name", "type": "string"}, {"name": "price", "type": "decimal"}],
  "access": [{"method": "POST", "roleNames": ["_EVERYONE"]}, {"method": "LISTEN", "roleNames": ["_EVERYONE"]}]}]}"#;

/// When a write was sent, and when its response arrived.
type Timing = (Instant, Option<Instant>);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().unwrap_or_else(|| "target/release/rthub".into());
    let admin = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let seconds: u64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(5);
    let concurrency = 4;

    let name = format!("rthub_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let schema = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&schema, SCHEMA).unwrap();

    let mut server = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0", "--database", &url, "--schema"])
        .arg(&schema)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(origin) = line.split("listening on ").nth(1) {
            break origin.trim().to_owned();
        }
    };
    let http = reqwest::Client::new();

    // 1. Throughput, closed loop.
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (http, url) = (http.clone(), format!("{base}/api/items"));
        workers.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let response = http
                    .post(&url)
                    .json(&serde_json::json!({"name": "widget", "price": 1.5}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    println!(
        "REST writes, {concurrency} clients, {seconds} s: {total} writes = {:.0} writes/s",
        total as f64 / seconds as f64
    );

    // 2. Commit → receipt latency, open loop.
    for rate in [100u64, 1000] {
        let negotiated: serde_json::Value = http
            .post(format!(
                "{base}/api/_rt/signalr/negotiate?negotiateVersion=1"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = negotiated["connectionToken"].as_str().unwrap();
        let ws = format!(
            "{}/api/_rt/signalr?id={token}",
            base.replacen("http", "ws", 1)
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
        socket
            .send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}"))
            .await
            .unwrap();
        socket
            .send(Message::text("{\"type\":1,\"invocationId\":\"l\",\"target\":\"Listen\",\"arguments\":[\"items\"]}\u{1e}"))
            .await
            .unwrap();
        loop {
            if let Some(Ok(Message::Text(text))) = socket.next().await {
                if text.contains("\"invocationId\":\"l\"") {
                    break;
                }
            }
        }
        let timings: Arc<Mutex<HashMap<String, Timing>>> = Arc::default();
        let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let count = rate * seconds;
        let reader = {
            let received = received.clone();
            tokio::spawn(async move {
                let mut seen = 0;
                while seen < count {
                    let Some(Ok(Message::Text(text))) = socket.next().await else {
                        break;
                    };
                    let at = Instant::now();
                    for record in text
                        .split('\u{1e}')
                        .filter(|r| r.contains("\"target\":\"change\""))
                    {
                        let value: serde_json::Value = serde_json::from_str(record).unwrap();
                        let name = value["arguments"][0]["data"]["name"]
                            .as_str()
                            .unwrap()
                            .to_owned();
                        received.lock().await.insert(name, at);
                        seen += 1;
                    }
                }
            })
        };
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let start = tokio::time::Instant::now();
        let mut writes = Vec::new();
        for i in 0..count {
            tokio::time::sleep_until(start + interval * i as u32).await;
            let (http, url, timings) = (http.clone(), format!("{base}/api/items"), timings.clone());
            writes.push(tokio::spawn(async move {
                let name = format!("w{i}");
                timings
                    .lock()
                    .await
                    .insert(name.clone(), (Instant::now(), None));
                let response = http
                    .post(&url)
                    .json(&serde_json::json!({"name": name, "price": 1}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
                timings.lock().await.get_mut(&name).unwrap().1 = Some(Instant::now());
            }));
        }
        for write in writes {
            write.await.unwrap();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
        let timings = timings.lock().await;
        let received = received.lock().await;
        let mut after_commit = Vec::new();
        let mut after_send = Vec::new();
        for (name, (sent, responded)) in timings.iter() {
            if let Some(at) = received.get(name) {
                after_send.push(at.duration_since(*sent).as_secs_f64() * 1000.0);
                let committed = responded.expect("every write answered");
                after_commit.push(at.saturating_duration_since(committed).as_secs_f64() * 1000.0);
            }
        }
        after_commit.sort_by(f64::total_cmp);
        after_send.sort_by(f64::total_cmp);
        println!(
            "{rate} writes/s for {seconds} s: {} of {count} changes received; response→receipt p50 {:.2} ms p99 {:.2} ms; send→receipt p50 {:.2} ms p99 {:.2} ms",
            after_commit.len(),
            percentile(&after_commit, 0.5),
            percentile(&after_commit, 0.99),
            percentile(&after_send, 0.5),
            percentile(&after_send, 0.99),
        );
    }

    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&schema);
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}
