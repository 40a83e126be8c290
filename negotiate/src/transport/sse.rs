//! Server-Sent Events: the response body is the connection's outbox, one event per message;
//! the client sends with POST. The connection ends when the GET ends.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use rt_core::{Next, Outbox};
use std::collections::VecDeque;
use std::convert::Infallible;

/// Frame one message as an event: `data: ` lines, one per line of the payload, and a blank
/// line. Lines are split on LF with a trailing CR dropped, as .NET's formatter does, so an
/// EventSource rejoins them with LF.
pub(crate) fn write_event(payload: &[u8], out: &mut Vec<u8>) {
    for line in payload.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The streaming response. `on_end` is dropped when the response ends for any reason (the
/// application closed, or the client went away and the server dropped the body), which is
/// what disposes the connection.
pub(crate) fn response<G: Send + 'static>(outbox: Outbox, on_end: G) -> Response {
    struct Stream<G> {
        outbox: Outbox,
        batch: VecDeque<Bytes>,
        opened: bool,
        _on_end: G,
    }
    let state = Stream {
        outbox,
        batch: VecDeque::new(),
        opened: false,
        _on_end: on_end,
    };
    let events = futures_util::stream::unfold(state, |mut state| async move {
        if !state.opened {
            state.opened = true;
            // Sent at once so the client's EventSource opens (and Firefox fires `onopen`)
            // before any message exists.
            return Some((Ok::<_, Infallible>(Bytes::from_static(b":\r\n")), state));
        }
        match state.outbox.next(&mut state.batch).await {
            Next::Frames => {
                let mut out = Vec::with_capacity(state.batch.iter().map(|f| f.len() + 10).sum());
                for frame in state.batch.drain(..) {
                    write_event(&frame, &mut out);
                }
                Some((Ok(Bytes::from(out)), state))
            }
            Next::Close | Next::Abort => None,
        }
    });
    let mut response = Response::new(Body::from_stream(events));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    crate::response::no_cache(headers);
    // Compression or proxy buffering would hold events back.
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &[u8]) -> String {
        let mut out = Vec::new();
        write_event(payload, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_line_is_one_data_field() {
        assert_eq!(event(b"{}\x1e"), "data: {}\x1e\r\n\r\n");
    }

    #[test]
    fn newlines_become_several_data_fields() {
        assert_eq!(event(b"a\nb\r\nc"), "data: a\r\ndata: b\r\ndata: c\r\n\r\n");
    }
}
