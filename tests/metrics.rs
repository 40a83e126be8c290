//! `/metrics`: the families after real traffic, the access rule, and `promtool check metrics`
//! where promtool is installed (scripts/test installs it; `RTHUB_REQUIRE_PROMTOOL=1` makes its
//! absence a failure).

mod collections_support;

use collections_support::{Db, Server, TestDb, SERVER_KEY};
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

async fn scrape(server: &Server) -> String {
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    response.text().await.unwrap()
}

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_real_traffic() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = collections_support::start(&database.url).await;
    let mut a = server.hub().await;
    let mut b = server.hub().await;
    for hub in [&mut a, &mut b] {
        let joined = hub.invoke("JoinGroup", json!(["app:room"])).await;
        assert!(joined.get("error").is_none(), "{joined}");
    }
    a.invoke("SendToGroup", json!(["app:room", {"hi": 1}]))
        .await;
    b.next_message().await;
    let (status, _) = server.post("/api/customers", json!({"name": "Ann"})).await;
    assert_eq!(status, 201);
    let stream = server
        .http
        .get(server.url("/realtime"))
        .header("x-apikey", SERVER_KEY)
        .send()
        .await
        .unwrap();
    let mut body = stream.bytes_stream();
    body.next().await;

    let text = scrape(&server).await;
    let json_ws = "{protocol=\"signalr.json\",transport=\"WebSockets\"}";
    assert_eq!(
        sample(&text, &format!("rthub_connections{json_ws}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("rthub_connections_opened_total{json_ws}")),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "rthub_connections{protocol=\"realtime.sse\",transport=\"sse\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "rthub_connection_events_total{event=\"handshake\",protocol=\"signalr.json\",reason=\"ok\"}"),
        Some(2.0)
    );
    // JoinGroup twice, SendToGroup once (and the handshakes are not hub messages).
    assert!(
        sample(
            &text,
            "rthub_messages_received_total{protocol=\"signalr.json\"}"
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        sample(
            &text,
            "rthub_messages_sent_total{protocol=\"signalr.json\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert!(sample(&text, "rthub_sent_bytes_total{protocol=\"signalr.json\"}").unwrap() > 100.0);
    assert_eq!(sample(&text, "rthub_groups{kind=\"channel\"}"), Some(1.0));
    assert_eq!(
        sample(&text, "rthub_group_members{kind=\"channel\"}"),
        Some(2.0)
    );
    assert!(
        sample(&text, "rthub_groups{kind=\"internal\"}").unwrap() >= 1.0,
        "/realtime's groups"
    );
    assert_eq!(
        sample(
            &text,
            "rthub_http_requests_total{method=\"POST\",route=\"/api/{collection}\",status=\"201\"}"
        ),
        Some(1.0)
    );
    assert!(sample(
        &text,
        "rthub_http_request_duration_seconds_count{method=\"POST\",route=\"/api/{collection}\"}"
    )
    .is_some());
    assert!(
        sample(
            &text,
            "rthub_db_query_duration_seconds_count{operation=\"create\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(text.contains("# TYPE rthub_change_delivery_delay_seconds histogram"));
    assert!(
        text.contains("# TYPE rthub_slow_consumer_closes_total counter")
            || !text.contains("slow_consumer")
    );
    assert!(sample(&text, "rthub_change_feed_lag_changes").is_some());
    assert!(sample(&text, "rthub_outbound_queue_bytes").is_some());

    // A connection that leaves is counted by reason.
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server).await;
        if sample(&text, &format!("rthub_connections{json_ws}")) == Some(1.0) {
            assert!(text.contains("rthub_connection_events_total{event=\"close\",protocol=\"signalr.json\",reason=\"transport\"} 1"), "{text}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed connection is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    promtool(&scrape(&server).await);
    server.stop().await;
    database.drop_it().await;
}

/// `promtool check metrics` on the scrape.
fn promtool(text: &str) {
    use std::io::Write;
    let spawned = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            assert!(
                std::env::var("RTHUB_REQUIRE_PROMTOOL").is_err(),
                "promtool is required here: {error}"
            );
            eprintln!("promtool is not installed: the lint was not run ({error})");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_metrics_need_the_server_or_the_token() {
    let database = TestDb::new(Db::Sqlite).await;
    let config = format!(
        "metrics_token = \"scrape-token-0123456789\"\n\n[[api_keys]]\nkey = \"{SERVER_KEY}\"\nrole = \"server\"\n"
    );
    let mut server = collections_support::start_on(&database.url, Some(&config), "0.0.0.0:0").await;
    // The server listens on every address; reach it on loopback.
    let port = server.server.local_addr().port();
    server.base = format!("http://127.0.0.1:{port}");
    let get = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    let url = server.url("/metrics");
    assert_eq!(get(server.http.get(&url)).await, 401);
    assert_eq!(get(server.http.get(&url).bearer_auth("wrong")).await, 401);
    assert_eq!(
        get(server.http.get(&url).bearer_auth("scrape-token-0123456789")).await,
        200
    );
    assert_eq!(
        get(server.http.get(&url).header("x-apikey", SERVER_KEY)).await,
        200
    );
    server.stop().await;
    database.drop_it().await;
}
