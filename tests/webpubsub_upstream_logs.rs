//! The upstream's logs when the event handler is down: one warning, however many events fail,
//! and no secret (the handler URL's query, a whole connection id). Its own test binary: a
//! thread's `tracing` subscriber only sees every callsite when no other test of the process
//! hits them first (the interest cache).

use router::Payload;
use rthub::webpubsub::upstream::{ConnectRefusal, ConnectRequest, ConnectionContext, Upstream};
use rthub::webpubsub::WebPubSubConfig;
use std::sync::Arc;
use std::time::Duration;

fn config(event_handler: String) -> Arc<WebPubSubConfig> {
    Arc::new(WebPubSubConfig {
        access_key: Some("upstream-logs-access-key-0123456789".into()),
        event_handler: Some(event_handler),
        event_timeout: Duration::from_secs(1),
        ..WebPubSubConfig::default()
    })
}

/// What a test's `tracing` output collects into.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_that_is_down_fails_events_with_one_warning_and_no_secret_in_the_log() {
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // The test's runtime is single-threaded, so every task logs through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let upstream = Upstream::new(config(format!(
        "http://127.0.0.1:{port}/eventhandler?code=handler-secret"
    )));
    let context = ConnectionContext {
        hub: Arc::from("app"),
        connection_id: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
        user_id: Some(Arc::from("grace")),
        subprotocol: "json.reliable.webpubsub.azure.v1",
    };
    let request = ConnectRequest {
        context: context.clone(),
        claims: Default::default(),
        query: Default::default(),
        headers: Default::default(),
        subprotocols: vec![context.subprotocol.into()],
    };
    for _ in 0..5 {
        let failed = upstream
            .event(&context, "echo", &Payload::Text(Arc::from("x")))
            .await;
        assert!(failed.is_err());
    }
    let refused = upstream.connect(&request).await;
    assert!(
        matches!(refused, Err(ConnectRefusal::Failed(_))),
        "{refused:?}"
    );

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<_> = text.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("could not be validated"), "{text}");
    assert!(!text.contains("handler-secret"), "{text}");
    assert!(!text.contains(context.connection_id.as_ref()), "{text}");
    assert!(
        text.contains(&format!("{}…", &context.connection_id[..6])),
        "{text}"
    );
}
