//! Long polling: each GET takes what the outbox holds (or waits for it, up to the poll
//! timeout); the client sends with POST and ends with DELETE.

use crate::manager::Attached;
use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rt_core::Next;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How a poll ended.
pub(crate) enum Polled {
    /// Messages, or an empty 200 at the poll timeout.
    Data(Bytes),
    /// The connection is over: 204, and the client stops polling without an error.
    Ended,
    /// A newer poll took over: 204 for this one.
    Superseded,
}

/// Marks the poll finished when dropped, also when the client went away mid-poll, so the
/// disconnect timeout starts counting from then.
struct PollInProgress {
    attached: Arc<Attached>,
    generation: u64,
}

impl Drop for PollInProgress {
    fn drop(&mut self) {
        let mut poll = self.attached.poll.lock();
        if poll.generation == self.generation {
            poll.current = None;
            poll.idle_since = Some(Instant::now());
        }
    }
}

/// Wait for data on a running connection.
pub(crate) async fn poll(attached: Arc<Attached>, timeout: Duration) -> Polled {
    let cancel = CancellationToken::new();
    let generation = {
        let mut poll = attached.poll.lock();
        if let Some(older) = poll.current.replace(cancel.clone()) {
            older.cancel();
        }
        poll.generation += 1;
        poll.idle_since = None;
        poll.generation
    };
    let _in_progress = PollInProgress {
        attached: attached.clone(),
        generation,
    };
    let mut batch = VecDeque::new();
    tokio::select! {
        biased;
        () = cancel.cancelled() => {
            if attached.outbox.is_open() { Polled::Superseded } else { Polled::Ended }
        }
        next = attached.outbox.next(&mut batch) => match next {
            Next::Frames => {
                // Every queued message in one response: batching is what makes long polling
                // keep up.
                let mut body = Vec::with_capacity(batch.iter().map(Bytes::len).sum());
                for frame in batch.drain(..) {
                    body.extend_from_slice(&frame);
                }
                Polled::Data(Bytes::from(body))
            }
            Next::Close | Next::Abort => Polled::Ended,
        },
        () = tokio::time::sleep(timeout) => Polled::Data(Bytes::new()),
    }
}

/// A poll response with the headers that keep proxies and browsers from caching it.
pub(crate) fn response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if status == StatusCode::OK {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
    }
    crate::response::no_cache(headers);
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use rt_core::Outbox;
    fn attached() -> Arc<Attached> {
        let (tx, _rx) = crate::inbound::channel(1);
        Attached::new(tx, Outbox::new(1 << 20))
    }

    #[tokio::test]
    async fn a_poll_returns_everything_queued_in_one_body() {
        let a = attached();
        a.outbox.push(Bytes::from_static(b"one\x1e")).unwrap();
        a.outbox.push(Bytes::from_static(b"two\x1e")).unwrap();
        match poll(a.clone(), Duration::from_secs(5)).await {
            Polled::Data(body) => assert_eq!(&body[..], b"one\x1etwo\x1e"),
            _ => panic!("expected data"),
        }
        assert!(a.poll.lock().idle_since.is_some(), "idle between polls");
    }

    #[tokio::test]
    async fn an_idle_poll_times_out_empty() {
        match poll(attached(), Duration::from_millis(10)).await {
            Polled::Data(body) => assert!(body.is_empty()),
            _ => panic!("expected an empty 200"),
        }
    }

    #[tokio::test]
    async fn a_newer_poll_supersedes_the_older_and_disposal_ends_both() {
        let a = attached();
        let older = tokio::spawn(poll(a.clone(), Duration::from_secs(5)));
        tokio::task::yield_now().await;
        while a.poll.lock().current.is_none() {
            tokio::task::yield_now().await;
        }
        let newer = tokio::spawn(poll(a.clone(), Duration::from_secs(5)));
        assert!(matches!(older.await.unwrap(), Polled::Superseded));
        while a.poll.lock().generation < 2 {
            tokio::task::yield_now().await;
        }
        a.dispose();
        assert!(matches!(newer.await.unwrap(), Polled::Ended));
    }
}
