//! Logs never carry credentials: connection tokens, bearer tokens and API keys in the query, nor
//! the `Authorization` and `x-apikey` headers — at the most verbose level there is.

mod process_support;

use serde_json::Value;

const SERVER_KEY: &str = "log-test-server-key-3f9a7c2e1b";
const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsb2ctdGVzdCJ9.c2VjcmV0LXNpZ25hdHVyZQ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_at_trace_level() {
    let server =
        process_support::spawn("", &["--server-key", SERVER_KEY], &[("RUST_LOG", "trace")]);
    let http = reqwest::Client::new();
    let negotiate = |path: String, key: Option<&str>| {
        let mut request = http.post(server.url(&path));
        if let Some(key) = key {
            request = request.header("x-apikey", key);
        }
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let negotiated = negotiate(
        "/api/_rt/signalr/negotiate?negotiateVersion=1".into(),
        Some(SERVER_KEY),
    )
    .await;
    let token = negotiated["connectionToken"].as_str().unwrap().to_owned();
    let v0 = negotiate(
        format!("/api/_rt/signalr/negotiate?apikey={SERVER_KEY}"),
        None,
    )
    .await;
    let v0_id = v0["connectionId"].as_str().unwrap().to_owned();
    // A long poll and an SSE request carry the token; the query carries the rest.
    let poll = http
        .get(server.url(&format!(
            "/api/_rt/signalr?id={token}&access_token={BEARER}&apikey={SERVER_KEY}"
        )))
        .timeout(std::time::Duration::from_millis(500))
        .send()
        .await;
    drop(poll);
    let _ = http
        .get(server.url(&format!("/api/_rt/signalr?id={v0_id}")))
        .header("accept", "text/event-stream")
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    let _ = http
        .get(server.url(&format!(
            "/api/customers?access_token={BEARER}&apikey={SERVER_KEY}&pageSize=1"
        )))
        .header("authorization", format!("Bearer {BEARER}"))
        .header("x-apikey", SERVER_KEY)
        .send()
        .await
        .unwrap();
    assert!(
        server.wait_for_output("/api/customers?", std::time::Duration::from_secs(5)),
        "the request span is logged at trace level"
    );
    let output = server.stop();
    for secret in [SERVER_KEY, BEARER, &token, &v0_id] {
        assert!(
            !output.contains(secret),
            "a secret reached the output: {secret}\n{output}"
        );
    }
    assert!(output.contains("access_token=***"), "{output}");
}
