//! Measures the server's memory per idle SignalR or Web PubSub connection.
//!
//! Starts `rthub` (the binary given, with `--listen 127.0.0.1:0`), reads its RSS, opens N
//! connections the way a client does (SignalR: negotiate, WebSocket, JSON handshake,
//! JoinGroup; Web PubSub: `GET /api/_rt/ws`, WebSocket with the subprotocol, `joinGroup` and
//! its ack), lets them idle, and reads the RSS again.
//!
//! ```sh
//! cargo build --release && cargo run --release --example idle_connections -- target/release/rthub 1000
//! cargo run --release --example idle_connections -- target/release/rthub 1000 webpubsub   # or webpubsub-reliable
//! ```

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args.next().unwrap_or_else(|| "target/release/rthub".into());
    let count: usize = args
        .next()
        .map(|n| n.parse().expect("a count"))
        .unwrap_or(1000);
    let protocol = args.next().unwrap_or_else(|| "signalr".into());
    let subprotocol = match protocol.as_str() {
        "signalr" => None,
        "webpubsub" => Some("json.webpubsub.azure.v1"),
        "webpubsub-reliable" => Some("json.reliable.webpubsub.azure.v1"),
        other => panic!("protocol {other}: signalr, webpubsub or webpubsub-reliable"),
    };

    let mut server = Command::new(&binary)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server");
    let addr = listening_addr(server.stdout.take().unwrap());
    let pid = server.id();
    let http = reqwest::Client::new();

    // Warm up allocator arenas and lazily built state with a few connections first.
    let mut sockets = Vec::with_capacity(count + 10);
    for _ in 0..10 {
        sockets.push(connect(&http, &addr, subprotocol).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid);
    for _ in 0..count {
        sockets.push(connect(&http, &addr, subprotocol).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before) * 1024) as f64 / count as f64;
    println!(
        "{count} idle {protocol} connections: server RSS {before} KiB -> {after} KiB, {per:.0} bytes per connection"
    );
    drop(sockets);
    let _ = server.kill();
    let _ = server.wait();
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(http: &reqwest::Client, addr: &str, subprotocol: Option<&str>) -> Socket {
    match subprotocol {
        None => connect_signalr(http, addr).await,
        Some(subprotocol) => connect_webpubsub(http, addr, subprotocol).await,
    }
}

async fn connect_webpubsub(http: &reqwest::Client, addr: &str, subprotocol: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = http
        .get(format!("http://{addr}/api/_rt/ws"))
        .send()
        .await
        .expect("GET /api/_rt/ws")
        .text()
        .await
        .expect("a client URL");
    let mut request = url.into_client_request().expect("a WebSocket URL");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        subprotocol.parse().expect("a header value"),
    );
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .expect("WebSocket");
    socket
        .send(Message::text(
            r#"{"type":"joinGroup","group":"app:idle","ackId":1}"#,
        ))
        .await
        .unwrap();
    // `connected`, then the ack.
    let mut seen = String::new();
    while !seen.contains("\"type\":\"ack\"") {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => seen.push_str(&text),
            other => panic!("unexpected {other:?}"),
        }
    }
    socket
}

async fn connect_signalr(http: &reqwest::Client, addr: &str) -> Socket {
    let negotiated: serde_json::Value = http
        .post(format!(
            "http://{addr}/api/_rt/signalr/negotiate?negotiateVersion=1"
        ))
        .send()
        .await
        .expect("negotiate")
        .json()
        .await
        .expect("negotiate JSON");
    let token = negotiated["connectionToken"].as_str().expect("a token");
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(
        format!("ws://{addr}/api/_rt/signalr?id={token}"),
        Some(config),
        false,
    )
    .await
    .expect("WebSocket");
    socket
        .send(Message::text("{\"protocol\":\"json\",\"version\":1}\u{1e}"))
        .await
        .unwrap();
    socket
        .send(Message::text(
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"JoinGroup\",\"arguments\":[\"app:idle\"]}\u{1e}",
        ))
        .await
        .unwrap();
    // The handshake reply and the Completion.
    let mut seen = String::new();
    while !seen.contains("\"type\":3") {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => seen.push_str(&text),
            other => panic!("unexpected {other:?}"),
        }
    }
    socket
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
