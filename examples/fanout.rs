//! A quick fan-out measurement: one sender, a group of N members on one transport, JSON.
//!
//! Starts `rthub`, connects N members over WebSockets, Server-Sent Events or long polling,
//! joins them to one group, then a WebSocket sender sends messages in windows of 100 (each
//! window is waited for until every member has it) and the rate at which messages are fully
//! delivered is reported. Not the benchmark suite: no latency histogram, no peers.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example fanout -- target/release/rthub websockets 100 5000
//! ```

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
const JOIN: &str =
    "{\"type\":1,\"invocationId\":\"j\",\"target\":\"JoinGroup\",\"arguments\":[\"app:bench\"]}\u{1e}";
const WINDOW: usize = 100;

/// Counts `message` invocations in a byte stream cut anywhere.
#[derive(Default)]
struct Counter {
    carry: Vec<u8>,
}

impl Counter {
    fn feed(&mut self, bytes: &[u8], received: &AtomicUsize) {
        self.carry.extend_from_slice(bytes);
        let Some(last) = self.carry.iter().rposition(|&b| b == 0x1e) else {
            return;
        };
        let complete = self.carry[..last]
            .split(|&b| b == 0x1e)
            .filter(|record| contains(record, b"\"target\":\"message\""))
            .count();
        received.fetch_add(complete, Ordering::Relaxed);
        self.carry.drain(..=last);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn negotiate(http: &reqwest::Client, base: &str) -> String {
    let body: serde_json::Value = http
        .post(format!("{base}/negotiate?negotiateVersion=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["connectionToken"].as_str().unwrap().to_owned()
}

async fn websocket(
    base: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let token = negotiate(&reqwest::Client::new(), base).await;
    let url = format!("{}?id={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket.send(Message::text(HANDSHAKE)).await.unwrap();
    socket
}

async fn member(
    transport: String,
    base: String,
    received: Arc<AtomicUsize>,
    joined: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::new();
    let mut counter = Counter::default();
    let mut joined_once = false;
    let mut note_join = |bytes: &[u8]| {
        if !joined_once && contains(bytes, b"\"invocationId\":\"j\"") {
            joined_once = true;
            joined.fetch_add(1, Ordering::Relaxed);
        }
    };
    match transport.as_str() {
        "websockets" => {
            let mut socket = websocket(&base).await;
            socket.send(Message::text(JOIN)).await.unwrap();
            while let Some(Ok(message)) = socket.next().await {
                let data = message.into_data();
                note_join(&data);
                counter.feed(&data, &received);
            }
        }
        "sse" => {
            let token = negotiate(&http, &base).await;
            let url = format!("{base}?id={token}");
            let response = http
                .get(&url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .unwrap();
            let mut body = response.bytes_stream();
            body.next().await; // the opening comment
            http.post(&url)
                .body(format!("{HANDSHAKE}{JOIN}"))
                .send()
                .await
                .unwrap();
            while let Some(Ok(chunk)) = body.next().await {
                note_join(&chunk);
                counter.feed(&chunk, &received);
            }
        }
        "longpolling" => {
            let token = negotiate(&http, &base).await;
            let url = format!("{base}?id={token}");
            http.get(&url).send().await.unwrap();
            http.post(&url)
                .body(format!("{HANDSHAKE}{JOIN}"))
                .send()
                .await
                .unwrap();
            loop {
                // The server going away at the end of the run ends the member.
                let Ok(response) = http.get(&url).send().await else {
                    return;
                };
                if response.status() != 200 {
                    return;
                }
                let Ok(body) = response.bytes().await else {
                    return;
                };
                note_join(&body);
                counter.feed(&body, &received);
            }
        }
        other => panic!("unknown transport {other}: websockets, sse or longpolling"),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().unwrap_or_else(|| "target/release/rthub".into());
    let transport = args.next().unwrap_or_else(|| "websockets".into());
    let members: usize = args.next().map(|n| n.parse().unwrap()).unwrap_or(100);
    let messages: usize = args.next().map(|n| n.parse().unwrap()).unwrap_or(5000);

    let mut server = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let addr = listening_addr(server.stdout.take().unwrap());
    let base = format!("http://{addr}/api/_rt/signalr");

    let joined = Arc::new(AtomicUsize::new(0));
    let counters: Vec<Arc<AtomicUsize>> = (0..members).map(|_| Arc::default()).collect();
    for received in &counters {
        tokio::spawn(member(
            transport.clone(),
            base.clone(),
            received.clone(),
            joined.clone(),
        ));
    }
    while joined.load(Ordering::Relaxed) < members {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let sender = websocket(&base).await;
    let (mut sink, mut stream) = sender.split();
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    let slowest = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    };
    let started = Instant::now();
    let mut sent = 0;
    while sent < messages {
        let window = WINDOW.min(messages - sent);
        for i in 0..window {
            let frame = format!(
                "{{\"type\":1,\"target\":\"SendToGroup\",\"arguments\":[\"app:bench\",{{\"n\":{},\"pad\":\"0123456789012345678901234567890123456789\"}}]}}\u{1e}",
                sent + i
            );
            sink.feed(Message::text(frame)).await.unwrap();
        }
        sink.flush().await.unwrap();
        sent += window;
        let deadline = Instant::now() + Duration::from_secs(30);
        while slowest() < sent {
            assert!(
                Instant::now() < deadline,
                "deliveries stalled at {} of {sent}",
                slowest()
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{transport}: {messages} messages x {members} members in {elapsed:.2} s = {:.0} messages/s fully delivered, {:.0} deliveries/s",
        messages as f64 / elapsed,
        (messages * members) as f64 / elapsed
    );
    let _ = server.kill();
    let _ = server.wait();
}

/// The address from the server's `rthub listening on http://ADDR` line (other lines, such as
/// the development key, come before it).
fn listening_addr(stdout: std::process::ChildStdout) -> String {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split("listening on http://").nth(1).map(str::to_owned))
        .expect("the server's listening line")
}
