//! At the open-file limit the server backs off accepting, says so once (not every second),
//! reports it in `/readyz`, and accepts again as soon as connections close. At start it raises
//! the soft limit to the hard limit.

mod process_support;

use serde_json::Value;
use std::time::Duration;

const WARNING: &str = "open-file limit reached";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_limit_is_raised_to_the_hard_limit() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    let soft = 256.min(hard);
    let server = process_support::spawn(&format!("ulimit -S -n {soft};"), &[], &[]);
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["openFiles"]["limit"], hard, "{ready}");
    let output = server.stop();
    assert!(output.contains("room for about"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_limit_accepting_backs_off_and_resumes() {
    // Soft and hard alike, so the server cannot raise it.
    let server = process_support::spawn("ulimit -n 64;", &[], &[]);
    // Keep-alive connection opened before the limit, to ask /readyz while at it.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let ready = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let _ = ready.bytes().await;
    let address = server.origin.trim_start_matches("http://").to_owned();
    let mut sockets = Vec::new();
    for _ in 0..80 {
        // The kernel completes these handshakes into the backlog whether or not the server
        // can accept them.
        match tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&address),
        )
        .await
        {
            Ok(Ok(socket)) => sockets.push(socket),
            _ => break,
        }
    }
    assert!(
        server.wait_for_output(WARNING, Duration::from_secs(10)),
        "the limit is logged:\n{}",
        server.output()
    );
    let at_limit = http.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(at_limit.status(), 503);
    let body: Value = at_limit.json().await.unwrap();
    assert_eq!(body["reason"], "open-file limit", "{body}");
    assert_eq!(body["openFiles"]["atLimit"], true, "{body}");
    // Seconds at the limit, one warning: the loop backs off quietly.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        server.output().matches(WARNING).count(),
        1,
        "{}",
        server.output()
    );
    drop(sockets);
    assert!(
        server.wait_for_output("accepting connections again", Duration::from_secs(10)),
        "{}",
        server.output()
    );
    let mut resumed = None;
    for _ in 0..50 {
        let response = reqwest::get(server.url("/readyz")).await.unwrap();
        if response.status() == 200 {
            resumed = Some(response.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = resumed.expect("ready again once connections closed");
    assert!(
        resumed["openFiles"]["pauses"].as_u64().unwrap() >= 1,
        "{resumed}"
    );
    assert!(resumed["openFiles"]["lastPause"].is_string(), "{resumed}");
    server.stop();
}
