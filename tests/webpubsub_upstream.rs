//! rthub's Web PubSub upstream events against a real Express app with
//! `@azure/web-pubsub-express` 1.1.0 (`interop-tests/helpers/webpubsub-handler.mjs`): the
//! `Upstream` the endpoint uses, driven directly. The app reports what it received at
//! `GET /received`, including whether each `ce-signature` matched its own node:crypto HMAC.
//! Needs node and the root node_modules (`npm ci`).

use router::Payload;
use rthub::webpubsub::upstream::{
    ConnectRefusal, ConnectRequest, ConnectResponse, ConnectionContext, Upstream,
};
use rthub::webpubsub::WebPubSubConfig;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const ACCESS_KEY: &str = "upstream-test-access-key-0123456789";
const SUBPROTOCOL: &str = "json.reliable.webpubsub.azure.v1";

/// The Express app as a child process, killed on drop.
struct Handler {
    child: Child,
    origin: String,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_handler() -> Handler {
    let root = env!("CARGO_MANIFEST_DIR");
    assert!(
        std::path::Path::new(root)
            .join("node_modules/@azure/web-pubsub-express")
            .exists(),
        "node_modules is missing: run `npm ci` in {root} first"
    );
    let mut child = Command::new("node")
        .arg("interop-tests/helpers/webpubsub-handler.mjs")
        .current_dir(root)
        .env("PORT", "0")
        .env("HUB", "app")
        .env("ACCESS_KEY", ACCESS_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(origin) = line.strip_prefix("listening on ") {
                let _ = tx.send(origin.trim().to_owned());
            }
        }
    });
    let origin = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the handler app prints its address");
    Handler { child, origin }
}

fn config(event_handler: Option<String>) -> Arc<WebPubSubConfig> {
    Arc::new(WebPubSubConfig {
        access_key: Some(ACCESS_KEY.into()),
        event_handler,
        event_timeout: Duration::from_secs(1),
        ..WebPubSubConfig::default()
    })
}

fn upstream(handler: &Handler, path: &str) -> Upstream {
    Upstream::new(config(Some(format!("{}{path}", handler.origin))))
        .with_origin("http://rthub.test:8080")
}

fn context(user_id: Option<&str>) -> ConnectionContext {
    ConnectionContext {
        hub: Arc::from("app"),
        connection_id: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
        user_id: user_id.map(Arc::from),
        subprotocol: SUBPROTOCOL,
    }
}

fn connect_request(context: &ConnectionContext, query: &[(&str, &str)]) -> ConnectRequest {
    let list = |pairs: &[(&str, &str)]| -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    };
    ConnectRequest {
        context: context.clone(),
        claims: list(&[("sub", "alice"), ("role", "webpubsub.sendToGroup")]),
        query: list(query),
        headers: list(&[("host", "rthub.test:8080")]),
        subprotocols: vec![SUBPROTOCOL.into()],
    }
}

async fn received(handler: &Handler) -> Value {
    reqwest::get(format!("{}/received", handler.origin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The app's record once `ready` holds of it (the unblocking events arrive in the background).
async fn received_when(handler: &Handler, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let seen = received(handler).await;
        if ready(&seen) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the handler never received it: {}", received(handler).await);
}

fn events<'a>(seen: &'a Value, kind: &str, connection_id: &str) -> Vec<&'a Value> {
    seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind && e["context"]["connectionId"] == connection_id)
        .collect()
}

fn posts<'a>(seen: &'a Value, connection_id: &str) -> Vec<&'a Value> {
    seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["headers"]["ce-connectionid"] == connection_id)
        .collect()
}

#[tokio::test]
async fn connect_sends_the_cloud_event_after_validation_and_takes_the_override() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/eventhandler");
    let context = context(Some("alice"));
    let id = context.connection_id.to_string();

    let response = upstream
        .connect(&connect_request(&context, &[("override", "1")]))
        .await
        .unwrap();
    assert_eq!(
        response,
        Some(ConnectResponse {
            user_id: Some("override-user".into()),
            groups: Some(vec!["app:g1".into(), "app:g2".into()]),
            roles: Some(vec!["webpubsub.joinLeaveGroup".into()]),
            subprotocol: None,
        })
    );

    let seen = received(&handler).await;
    let requests = seen["requests"].as_array().unwrap();
    // Abuse protection first: one OPTIONS with our origin, then the event.
    assert_eq!(requests[0]["method"], "OPTIONS");
    assert_eq!(
        requests[0]["headers"]["webhook-request-origin"],
        "rthub.test:8080"
    );
    let post = posts(&seen, &id);
    assert_eq!(post.len(), 1);
    let headers = &post[0]["headers"];
    assert_eq!(headers["ce-specversion"], "1.0");
    assert_eq!(headers["ce-awpsversion"], "1.0");
    assert_eq!(headers["ce-type"], "azure.webpubsub.sys.connect");
    assert_eq!(headers["ce-source"], format!("/hubs/app/client/{id}"));
    assert_eq!(headers["ce-hub"], "app");
    assert_eq!(headers["ce-userid"], "alice");
    assert_eq!(headers["ce-eventname"], "connect");
    assert_eq!(headers["webhook-request-origin"], "rthub.test:8080");
    assert!(headers["ce-id"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(headers["ce-time"]
        .as_str()
        .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
    assert!(headers["content-type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(post[0]["signatureValid"], true, "{headers}");
    assert_eq!(
        headers["ce-signature"],
        rthub::webpubsub::upstream::signature(ACCESS_KEY, &id)
    );

    let connect = events(&seen, "connect", &id);
    assert_eq!(connect.len(), 1);
    let connect = connect[0];
    assert_eq!(connect["claims"]["sub"], json!(["alice"]));
    assert_eq!(connect["query"]["override"], json!(["1"]));
    assert_eq!(connect["headers"]["host"], json!(["rthub.test:8080"]));
    assert_eq!(connect["subprotocols"], json!([SUBPROTOCOL]));
    assert_eq!(connect["clientCertificates"], json!([]));
    assert_eq!(connect["context"]["userId"], "alice");
    assert_eq!(connect["context"]["origin"], "rthub.test:8080");
}

#[tokio::test]
async fn a_refused_connect_is_unauthorized_with_the_handlers_text() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/eventhandler");
    let context = context(None);
    let refused = upstream
        .connect(&connect_request(&context, &[("refuse", "1")]))
        .await;
    assert_eq!(
        refused,
        Err(ConnectRefusal::Unauthorized("not on the list".into()))
    );
    // No user id: no ce-userId header, and the handler sees none.
    let seen = received(&handler).await;
    let post = posts(&seen, &context.connection_id);
    assert!(post[0]["headers"].get("ce-userid").is_none());
}

#[tokio::test]
async fn user_events_of_each_data_type_come_back_typed_with_the_connection_state() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/eventhandler");
    let context = context(Some("bob"));
    let id = context.connection_id.to_string();
    // connect sets the state {seenConnect: true}; later events carry it.
    upstream
        .connect(&connect_request(&context, &[]))
        .await
        .unwrap();

    let json_reply = upstream
        .event(&context, "echo", &Payload::Json(json!({"n": 1})))
        .await
        .unwrap();
    assert_eq!(
        json_reply,
        Some(Payload::Json(
            json!({"echo": {"n": 1}, "states": {"seenConnect": true}})
        ))
    );
    let text_reply = upstream
        .event(&context, "echo", &Payload::Text(Arc::from("hi")))
        .await
        .unwrap();
    assert_eq!(text_reply, Some(Payload::Text(Arc::from("echo: hi"))));
    let binary_reply = upstream
        .event(
            &context,
            "echo",
            &Payload::Binary(bytes::Bytes::from_static(&[0, 1, 255])),
        )
        .await
        .unwrap();
    assert_eq!(
        binary_reply,
        Some(Payload::Binary(bytes::Bytes::from_static(
            b"echo:\x00\x01\xff"
        )))
    );
    let silent = upstream
        .event(&context, "silent", &Payload::Text(Arc::from("x")))
        .await
        .unwrap();
    assert_eq!(silent, None);

    // A state a user event's answer sets goes with the next event.
    for expected in ["1", "2"] {
        let count = upstream
            .event(&context, "count", &Payload::Text(Arc::from("+")))
            .await
            .unwrap();
        assert_eq!(count, Some(Payload::Text(Arc::from(expected))));
    }

    let seen = received(&handler).await;
    let users = events(&seen, "user", &id);
    let types: Vec<_> = users.iter().map(|e| e["dataType"].clone()).collect();
    assert_eq!(
        types,
        json!(["json", "text", "binary", "text", "text", "text"])
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(users[2]["data"], "AAH/", "the binary body arrives intact");
    let post = posts(&seen, &id);
    let echo = &post[1]["headers"];
    assert_eq!(echo["ce-type"], "azure.webpubsub.user.echo");
    assert_eq!(echo["ce-eventname"], "echo");
    assert_eq!(echo["ce-subprotocol"], SUBPROTOCOL);
    assert_eq!(echo["content-type"], "application/json; charset=utf-8");
    assert_eq!(
        post[2]["headers"]["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        post[3]["headers"]["content-type"],
        "application/octet-stream"
    );
    assert!(post.iter().all(|p| p["signatureValid"] == true));
    // One validation for all of them.
    let options = seen["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "OPTIONS")
        .count();
    assert_eq!(options, 1);
}

#[tokio::test]
async fn a_failing_or_slow_handler_is_an_event_failure() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/eventhandler");
    let context = context(Some("carol"));
    let failed = upstream
        .event(&context, "fail", &Payload::Text(Arc::from("x")))
        .await
        .unwrap_err();
    assert!(failed.0.contains("500"), "{failed}");
    assert!(failed.0.contains("the handler broke"), "{failed}");
    // event_timeout is 1 s here; the handler takes 3.
    let slow = upstream
        .event(&context, "slow", &Payload::Text(Arc::from("x")))
        .await
        .unwrap_err();
    assert!(slow.0.contains("did not answer"), "{slow}");
    // The handler still works afterwards.
    let ok = upstream
        .event(&context, "echo", &Payload::Text(Arc::from("again")))
        .await
        .unwrap();
    assert_eq!(ok, Some(Payload::Text(Arc::from("echo: again"))));
}

#[tokio::test]
async fn connected_and_disconnected_arrive_in_order_with_their_headers() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/eventhandler");
    let context = context(Some("dave"));
    let id = context.connection_id.to_string();
    upstream
        .connect(&connect_request(&context, &[]))
        .await
        .unwrap();
    // Neither waits for the handler.
    upstream.connected(&context);
    upstream.disconnected(&context, Some("client closed"));

    let seen = received_when(&handler, |seen| {
        !events(seen, "disconnected", &id).is_empty() && !events(seen, "connected", &id).is_empty()
    })
    .await;
    let kinds: Vec<_> = seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["context"]["connectionId"] == id.as_str())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["connect", "connected", "disconnected"]);
    let connected = events(&seen, "connected", &id)[0];
    assert_eq!(connected["context"]["userId"], "dave");
    assert_eq!(connected["context"]["states"], json!({"seenConnect": true}));
    let disconnected = events(&seen, "disconnected", &id)[0];
    assert_eq!(disconnected["reason"], "client closed");
    assert_eq!(
        disconnected["context"]["states"],
        json!({"seenConnect": true})
    );
    let post = posts(&seen, &id);
    assert_eq!(
        post[1]["headers"]["ce-type"],
        "azure.webpubsub.sys.connected"
    );
    assert_eq!(post[1]["headers"]["ce-subprotocol"], SUBPROTOCOL);
    assert_eq!(
        post[2]["headers"]["ce-type"],
        "azure.webpubsub.sys.disconnected"
    );
    assert_eq!(
        post[2]["headers"]["ce-source"],
        format!("/hubs/app/client/{id}")
    );
    assert!(post.iter().all(|p| p["signatureValid"] == true));
}

#[tokio::test]
async fn a_handler_that_does_not_allow_our_origin_gets_no_events() {
    let handler = start_handler();
    let upstream = upstream(&handler, "/strict");
    let context = context(Some("eve"));
    let refused = upstream.connect(&connect_request(&context, &[])).await;
    assert!(
        matches!(&refused, Err(ConnectRefusal::Failed(text)) if text.contains("does not allow")),
        "{refused:?}"
    );
    let failed = upstream
        .event(&context, "echo", &Payload::Text(Arc::from("x")))
        .await;
    assert!(failed.is_err());
    let seen = received(&handler).await;
    let requests = seen["requests"].as_array().unwrap();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r["method"] == "OPTIONS" && r["path"] == "/strict"),
        "{seen}"
    );
    assert!(seen["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn only_the_configured_events_are_sent() {
    let handler = start_handler();
    let config = Arc::new(WebPubSubConfig {
        access_key: Some(ACCESS_KEY.into()),
        event_handler: Some(format!("{}/eventhandler", handler.origin)),
        user_events: vec!["chosen".into()],
        system_events: vec!["disconnected".into()],
        ..WebPubSubConfig::default()
    });
    let upstream = Upstream::new(config);
    let context = context(Some("frank"));
    let id = context.connection_id.to_string();
    assert_eq!(
        upstream.connect(&connect_request(&context, &[])).await,
        Ok(None)
    );
    upstream.connected(&context);
    assert_eq!(
        upstream
            .event(&context, "other", &Payload::Text(Arc::from("x")))
            .await,
        Ok(None)
    );
    let chosen = upstream
        .event(&context, "chosen", &Payload::Text(Arc::from("x")))
        .await
        .unwrap();
    assert_eq!(chosen, Some(Payload::Text(Arc::from("echo: x"))));
    upstream.disconnected(&context, None);
    let seen = received_when(&handler, |seen| {
        !events(seen, "disconnected", &id).is_empty()
    })
    .await;
    let kinds: Vec<_> = posts(&seen, &id)
        .iter()
        .map(|p| p["headers"]["ce-eventname"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["chosen", "disconnected"]);
    // The default origin, and no reason for a plain close.
    assert_eq!(
        seen["requests"][0]["headers"]["webhook-request-origin"],
        "localhost"
    );
    assert!(events(&seen, "disconnected", &id)[0]
        .get("reason")
        .is_none());
}

#[tokio::test]
async fn without_a_handler_every_event_is_accepted_and_dropped() {
    let upstream = Upstream::new(config(None));
    let context = context(None);
    assert_eq!(
        upstream.connect(&connect_request(&context, &[])).await,
        Ok(None)
    );
    upstream.connected(&context);
    assert_eq!(
        upstream
            .event(&context, "echo", &Payload::Text(Arc::from("x")))
            .await,
        Ok(None)
    );
    upstream.disconnected(&context, None);
}
