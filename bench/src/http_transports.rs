//! SignalR subscribers over rthub's HTTP transports: Server-Sent Events and long polling.
//!
//! Like the WebSocket subscribers they never decode messages: the payload stamps appear
//! verbatim in SSE `data:` lines and in poll bodies, so each chunk is scanned as it arrives.

use crate::load::{incomplete_stamp_at, Recorder};
use anyhow::{anyhow, bail, Context};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpTransport {
    ServerSentEvents,
    LongPolling,
}

const HANDSHAKE: &str = "{\"protocol\":\"json\",\"version\":1}\u{1e}";
const JOINED: &[u8] = b"\"invocationId\":\"j\"";
/// Longer than the server's long-poll wait, so an idle poll ends with the server's empty 200.
const POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// Connects one member of `group` over `transport`, waits until its `JoinGroup` completed,
/// then records its deliveries on a task of its own until the connection ends.
pub async fn subscribe(
    http: &reqwest::Client,
    addr: &str,
    hub: &str,
    transport: HttpTransport,
    group: &str,
    recorder: Arc<Recorder>,
) -> anyhow::Result<()> {
    let negotiated: serde_json::Value = http
        .post(format!("http://{addr}{hub}/negotiate?negotiateVersion=1"))
        .send()
        .await?
        .json()
        .await
        .context("negotiate")?;
    let token = negotiated["connectionToken"]
        .as_str()
        .ok_or_else(|| anyhow!("negotiate answered {negotiated}"))?;
    let url = format!("http://{addr}{hub}?id={token}");
    let join = format!(
        "{HANDSHAKE}{{\"type\":1,\"invocationId\":\"j\",\"target\":\"JoinGroup\",\"arguments\":[\"{group}\"]}}\u{1e}"
    );
    match transport {
        HttpTransport::ServerSentEvents => {
            let response = http
                .get(&url)
                .header("accept", "text/event-stream")
                .timeout(Duration::from_secs(3600))
                .send()
                .await?;
            if !response.status().is_success() {
                bail!("SSE GET answered {}", response.status());
            }
            let mut body = response.bytes_stream();
            http.post(&url)
                .body(join)
                .send()
                .await?
                .error_for_status()?;
            let mut seen = Vec::new();
            while memchr::memmem::find(&seen, JOINED).is_none() {
                let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
                    .await
                    .context("no JoinGroup completion within 10 s")?
                    .ok_or_else(|| anyhow!("the event stream ended"))??;
                seen.extend_from_slice(&chunk);
            }
            tokio::spawn(async move {
                let mut pending: Vec<u8> = Vec::new();
                while let Some(Ok(chunk)) = body.next().await {
                    pending.extend_from_slice(&chunk);
                    recorder.frame(&pending);
                    // A stamp cut between chunks is counted with the next one, never twice.
                    let tail = incomplete_stamp_at(&pending);
                    pending.drain(..tail);
                }
            });
        }
        HttpTransport::LongPolling => {
            // The first poll answers at once; the handshake and join follow it.
            http.get(&url).send().await?.error_for_status()?;
            http.post(&url)
                .body(join)
                .send()
                .await?
                .error_for_status()?;
            let mut joined = false;
            while !joined {
                let poll = http.get(&url).timeout(POLL_TIMEOUT).send().await?;
                let body = poll.error_for_status()?.bytes().await?;
                joined = memchr::memmem::find(&body, JOINED).is_some();
            }
            let http = http.clone();
            tokio::spawn(async move {
                // Every poll body holds whole messages, so no stamp is ever cut.
                loop {
                    let Ok(response) = http.get(&url).timeout(POLL_TIMEOUT).send().await else {
                        return;
                    };
                    if response.status() != 200 {
                        return;
                    }
                    let Ok(body) = response.bytes().await else {
                        return;
                    };
                    recorder.frame(&body);
                }
            });
        }
    }
    Ok(())
}
