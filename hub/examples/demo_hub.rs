//! The `hub` crate as a SignalR server library: a hub with a unary method, a server-to-client
//! stream and a client-to-server stream.
//!
//! ```sh
//! cargo run -p hub --example demo_hub -- 127.0.0.1:5000
//! ```
//! Then, from JavaScript: `withUrl("http://127.0.0.1:5000/hub")`,
//! `connection.invoke("Echo", "hi")`, `connection.stream("Count", 5, null)`,
//! `connection.invoke("Sum", subject)`.

use futures_util::stream;
use hub::{Caller, HubError, HubMethods, HubServer, UploadStream};
use std::time::Duration;

fn methods() -> HubMethods {
    HubMethods::new()
        .method(
            "Echo",
            |_: Caller, (value,): (serde_json::Value,)| async move { Ok::<_, HubError>(value) },
        )
        // Counts 0..n, one item every `delay_ms`; fails at `fail_at` if given.
        .stream(
            "Count",
            |_: Caller, (n, delay_ms, fail_at): (u32, Option<u64>, Option<u32>)| {
                let delay = Duration::from_millis(delay_ms.unwrap_or(0));
                stream::unfold(0, move |i| async move {
                    if i >= n {
                        return None;
                    }
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let item = if Some(i) == fail_at {
                        Err(HubError::Refused(format!("failed at {i}")))
                    } else {
                        Ok(i)
                    };
                    Some((item, i + 1))
                })
            },
        )
        .upload(
            "Sum",
            1,
            |_: Caller, (): (), mut streams: Vec<UploadStream>| async move {
                let mut total = 0.0;
                if let Some(items) = streams.first_mut() {
                    while let Some(item) = items.next().await {
                        let item = item.map_err(HubError::Refused)?;
                        total += item.as_f64().unwrap_or(0.0);
                    }
                }
                Ok::<_, HubError>(total)
            },
        )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".into());
    let hub = HubServer::builder(methods()).build();
    let app = axum::Router::new().nest("/hub", hub.endpoint(Default::default()));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "demo hub listening on http://{}/hub",
        listener.local_addr()?
    );
    axum::serve(listener, app).await
}
