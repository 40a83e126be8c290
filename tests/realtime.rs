//! `/realtime` over raw HTTP: the exact bytes, resume with `Last-Event-ID` (also across a
//! restart, on both databases), stale ids, publish rules and slow-consumer isolation.

mod collections_support;

use collections_support::{start_configured, Db, Server, TestDb};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SERVER_KEY: &str = "realtime-server-key-0123456789";
const CLIENT_KEY: &str = "realtime-client-key-0123456789";

fn config(extra: &str) -> String {
    format!(
        "[[api_keys]]\nkey = \"{SERVER_KEY}\"\nrole = \"server\"\n\n[[api_keys]]\nkey = \"{CLIENT_KEY}\"\nrole = \"client\"\nrealtime = [\"POST:customers\", \"EVENT:GOAL\"]\n\n[realtime]\nping_secs = 1\nretry_ms = 1500\n{extra}"
    )
}

/// An open `/realtime` response, read event by event.
struct Stream {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    text: String,
}

impl Stream {
    async fn open(server: &Server, key: &str, last_event_id: Option<&str>) -> Stream {
        let mut request = server
            .http
            .get(server.url("/realtime"))
            .header("x-apikey", key);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-cache");
        assert_eq!(headers["x-accel-buffering"], "no");
        Stream {
            body: Box::pin(response.bytes_stream()),
            text: String::new(),
        }
    }

    /// The next block (up to and without its blank line), pings included.
    async fn block(&mut self) -> String {
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block = self.text[..end].to_owned();
                self.text.drain(..end + 2);
                return block;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream is open")
                .unwrap();
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next block that is not a ping.
    async fn event(&mut self) -> String {
        loop {
            let block = self.block().await;
            if !block.starts_with("event: ping\n") {
                return block;
            }
        }
    }

    /// The opening as every stream starts.
    async fn opening(&mut self) {
        assert_eq!(self.block().await, ": rthub realtime");
        assert_eq!(self.block().await, "retry: 1500");
        assert_eq!(
            self.block().await,
            "data: {\"channel\":\"init\",\"data\":{}}"
        );
    }
}

/// `(id, event, data)` of a block.
fn parse(block: &str) -> (String, String, Value) {
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines.len(), 3, "id, event, data: {block}");
    let id = lines[0].strip_prefix("id: ").expect(block).to_owned();
    let event = lines[1].strip_prefix("event: ").expect(block).to_owned();
    let data = serde_json::from_str(lines[2].strip_prefix("data: ").expect(block)).unwrap();
    (id, event, data)
}

async fn send(server: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .request(method, server.url(path))
        .header("x-apikey", SERVER_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(server: &Server, name: &str) -> String {
    let (status, item) = send(
        server,
        reqwest::Method::POST,
        "/api/customers",
        json!({"name": name}),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    item["id"].as_str().unwrap().to_owned()
}

async fn publish(server: &Server, key: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/realtime"))
        .header("x-apikey", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn the_stream_has_restdb_bytes(db: Db) {
    let database = TestDb::new(db).await;
    let server = start_configured(&database.url, Some(&config(""))).await;
    let mut stream = Stream::open(&server, SERVER_KEY, None).await;
    stream.opening().await;

    let id = create(&server, "Ann").await;
    let (seq, event, data) = parse(&stream.event().await);
    assert_eq!(event, "post");
    assert!(seq.parse::<i64>().unwrap() > 0);
    assert_eq!(
        (&data["event"], &data["collection"]),
        (&json!("post"), &json!("customers"))
    );
    assert_eq!(
        (&data["data"]["_id"], &data["data"]["name"]),
        (&json!(id), &json!("Ann"))
    );
    assert!(data["ts"].as_str().unwrap().ends_with('Z'));

    let path = format!("/api/customers/{id}");
    send(&server, reqwest::Method::PUT, &path, json!({"name": "Bo"})).await;
    send(&server, reqwest::Method::PATCH, &path, json!({"vip": true})).await;
    send(&server, reqwest::Method::DELETE, &path, json!({})).await;
    let mut previous: i64 = seq.parse().unwrap();
    for expected in ["put", "put", "delete"] {
        let (next, event, data) = parse(&stream.event().await);
        assert_eq!(event, expected);
        let next: i64 = next.parse().unwrap();
        assert_eq!(next, previous + 1, "ids are the change log's seq");
        previous = next;
        let wanted = if expected == "delete" {
            json!([id])
        } else {
            json!(id)
        };
        assert_eq!((&data["event"], &data["data"]), (&json!(expected), &wanted));
    }

    assert_eq!(
        publish(
            &server,
            SERVER_KEY,
            json!({"event": "GOAL", "data": {"team": "home"}})
        )
        .await,
        (200, json!({"message": "OK"}))
    );
    let block = stream.event().await;
    let (id, event, data) = parse(&block);
    assert_eq!(event, "publish");
    assert_eq!(data, json!({"event": "GOAL", "data": {"team": "home"}}));
    assert!(
        id.starts_with(&format!("{}-", seq.parse::<i64>().unwrap() + 3)),
        "after the delete: {id}"
    );
    assert_eq!(
        block,
        format!(
            "id: {id}\nevent: publish\ndata: {{\"event\":\"GOAL\",\"data\":{{\"team\":\"home\"}}}}"
        )
    );

    // The keep-alive, at the configured second.
    let ping = stream.block().await;
    let time = ping.strip_prefix("event: ping\ndata: ").expect(&ping);
    assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{ping}");

    server.stop().await;
    database.drop_it().await;
}

async fn a_stream_resumes_with_nothing_lost_also_after_a_restart(db: Db) {
    let database = TestDb::new(db).await;
    let server = start_configured(&database.url, Some(&config(""))).await;
    let mut stream = Stream::open(&server, SERVER_KEY, None).await;
    stream.opening().await;
    create(&server, "seen").await;
    publish(&server, SERVER_KEY, json!({"event": "GOAL", "data": 1})).await;
    let _ = parse(&stream.event().await);
    let (last, _, _) = parse(&stream.event().await);
    drop(stream);

    // Missed while away: two writes and an event. Custom events take their place among database
    // events in delivery order (a write is delivered once the change feed has numbered it), which
    // a stream that stayed shows; the resumed one must show the same, once each.
    let mut stayed = Stream::open(&server, SERVER_KEY, None).await;
    stayed.opening().await;
    create(&server, "missed-1").await;
    publish(&server, SERVER_KEY, json!({"event": "GOAL", "data": 2})).await;
    create(&server, "missed-2").await;
    let describe = |(id, event, data): (String, String, Value)| {
        let what = if event == "publish" {
            data["data"].to_string()
        } else {
            data["data"]["name"].as_str().unwrap().to_owned()
        };
        (id, what)
    };
    let mut live_order = Vec::new();
    for _ in 0..3 {
        live_order.push(describe(parse(&stayed.event().await)));
    }
    let mut stream = Stream::open(&server, SERVER_KEY, Some(&last)).await;
    stream.opening().await;
    let mut resumed = Vec::new();
    for _ in 0..3 {
        resumed.push(describe(parse(&stream.event().await)));
    }
    assert_eq!(
        resumed, live_order,
        "the missed events, as a live stream saw them"
    );
    let mut names: Vec<&str> = resumed.iter().map(|(_, what)| what.as_str()).collect();
    names.sort();
    assert_eq!(names, ["2", "missed-1", "missed-2"]);
    let ids: Vec<String> = resumed.iter().map(|(id, _)| id.clone()).collect();
    let custom = ids.iter().find(|id| id.contains('-')).unwrap().clone();
    drop(stayed);
    create(&server, "live").await;
    let (live_id, _, live) = parse(&stream.event().await);
    assert_eq!(live["data"]["name"], "live", "then live, no duplicate");
    drop(stream);

    // A restart: database events come back from the change log.
    let url = database.url.clone();
    server.stop().await;
    let server = start_configured(&url, Some(&config(""))).await;
    create(&server, "after-restart").await;
    let mut stream = Stream::open(&server, SERVER_KEY, Some(&live_id)).await;
    stream.opening().await;
    let (_, event, data) = parse(&stream.event().await);
    assert_eq!(
        (event.as_str(), &data["data"]["name"]),
        ("post", &json!("after-restart"))
    );
    drop(stream);

    // A custom event's id from the earlier run cannot be resumed: the client is told to reload.
    let mut stream = Stream::open(&server, SERVER_KEY, Some(&custom)).await;
    stream.opening().await;
    let reload = stream.event().await;
    assert!(
        reload.starts_with("event: reload\ndata: {\"reason\":"),
        "{reload}"
    );
    assert!(reload.contains(&format!("\"lastEventId\":\"{custom}\"")));
    server.stop().await;
    database.drop_it().await;
}

on_both_databases!(
    the_stream_has_restdb_bytes,
    a_stream_resumes_with_nothing_lost_also_after_a_restart,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_unreachable_ids() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&config(""))).await;
    let response = server
        .http
        .get(server.url("/realtime"))
        .header("x-apikey", SERVER_KEY)
        .header("last-event-id", "not-an-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let mut stream = Stream::open(&server, SERVER_KEY, Some("999999")).await;
    stream.opening().await;
    assert!(stream
        .event()
        .await
        .contains("is ahead of this server's stream"));
    server.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_follows_the_rules_and_refusals_publish_nothing() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&config("max_event_bytes = 100\n"))).await;
    let mut stream = Stream::open(&server, SERVER_KEY, None).await;
    stream.opening().await;
    let cases = [
        (CLIENT_KEY, json!({"event": "OTHER", "data": 1}), 403),
        (CLIENT_KEY, json!({"event": "bad name", "data": 1}), 400),
        (SERVER_KEY, json!({"event": "ping", "data": 1}), 400),
        (SERVER_KEY, json!({"event": "GOAL"}), 400),
        (SERVER_KEY, json!({"data": 1}), 400),
        (
            SERVER_KEY,
            json!({"event": "GOAL", "data": 1, "extra": 2}),
            400,
        ),
        (
            SERVER_KEY,
            json!({"event": "GOAL", "data": "x".repeat(200)}),
            413,
        ),
    ];
    for (key, body, status) in cases {
        let (got, error) = publish(&server, key, body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    let anonymous = server
        .http
        .post(server.url("/realtime"))
        .json(&json!({"event": "GOAL", "data": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // The client key may publish GOAL: the first event the stream sees.
    assert_eq!(
        publish(&server, CLIENT_KEY, json!({"event": "GOAL", "data": "ok"}))
            .await
            .0,
        200
    );
    let (_, _, data) = parse(&stream.event().await);
    assert_eq!(data, json!({"event": "GOAL", "data": "ok"}));
    server.stop().await;
    database.drop_it().await;
}

/// A stream whose client stops reading is closed when its queue is full; another stream gets
/// every event meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_stream_is_closed_alone() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&config("max_queue_bytes = 65536\n"))).await;
    let address = server.server.local_addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(address).await.unwrap();
    slow.write_all(
        format!("GET /realtime HTTP/1.1\r\nhost: x\r\nx-apikey: {SERVER_KEY}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 256];
    let n = slow.read(&mut head).await.unwrap();
    assert!(std::str::from_utf8(&head[..n])
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    let mut healthy = Stream::open(&server, SERVER_KEY, None).await;
    healthy.opening().await;

    let data = "y".repeat(30_000);
    let events = 400;
    for i in 0..events {
        let (status, _) = publish(
            &server,
            SERVER_KEY,
            json!({"event": "GOAL", "data": {"i": i, "pad": data}}),
        )
        .await;
        assert_eq!(status, 200);
        let (_, _, got) = parse(&healthy.event().await);
        assert_eq!(got["data"]["i"], i, "the healthy stream keeps up");
    }
    // The slow one was cut off (reading it to its farewell through a 4 KiB window would take
    // longer than the test): the router counted it, and only it.
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rthub_slow_consumer_closes_total{protocol=\"realtime.sse\"} 1\n"),
        "{metrics}"
    );
    drop(slow);
    server.stop().await;
    database.drop_it().await;
}
