//! `/realtime`'s bytes: RestDB.io's typed SSE events (PRODUCT.md section 5). Each frame is a
//! whole event: `id:`, `event:`, one `data:` line of JSON, a blank line.

use super::grants::DbEvent;
use bytes::Bytes;
use router::{ChangeMessage, CustomEvent, Encoder, Frame, Outbound, ProtocolId};
use serde_json::{json, Map, Value};

pub const PROTOCOL: ProtocolId = ProtocolId::new("realtime.sse");

pub struct SseEncoder;

impl Encoder for SseEncoder {
    fn protocol(&self) -> ProtocolId {
        PROTOCOL
    }

    fn encode(&self, message: &Outbound) -> Option<Frame> {
        let frame = match message {
            Outbound::Change(change) => change_frame(change),
            Outbound::Event(event) => event_frame(event),
            // Channel messages and invocations are other protocols'.
            Outbound::Group(_)
            | Outbound::Invocation(_)
            | Outbound::Direct(_)
            | Outbound::Close(_) => return None,
        };
        Some(Frame::Whole(frame))
    }
}

/// `post` carries the item with `_id`, `put` (PUT and PATCH) the id, `delete` `[id]`.
fn change_frame(change: &ChangeMessage) -> Bytes {
    let event = DbEvent::of(change.operation);
    let id = Value::String(change.id.to_string());
    let data = match event {
        DbEvent::Post => {
            let mut item = Map::new();
            item.insert("_id".into(), id);
            if let Value::Object(fields) = &change.data {
                for (key, value) in fields {
                    item.entry(key.clone()).or_insert_with(|| value.clone());
                }
            }
            Value::Object(item)
        }
        DbEvent::Put => id,
        DbEvent::Delete => Value::Array(vec![id]),
    };
    let payload = json!({
        "event": event.as_str(),
        "collection": &*change.collection,
        "data": data,
        "ts": &*change.ts,
    });
    frame(
        &change.seq.to_string(),
        event.as_str(),
        &payload.to_string(),
    )
}

/// Subscribers get custom events as type `publish`; the stock client dispatches on `event`.
fn event_frame(event: &CustomEvent) -> Bytes {
    let payload = json!({ "event": &*event.name, "data": event.data.to_json() });
    frame(&event.id, "publish", &payload.to_string())
}

fn frame(id: &str, event: &str, data: &str) -> Bytes {
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

/// The stream's first bytes: a comment (some proxies flush on the first bytes), the reconnect
/// delay, and RestDB's greeting.
pub fn opening(retry_ms: u128) -> Bytes {
    Bytes::from(format!(
        ": rthub realtime\n\nretry: {retry_ms}\n\ndata: {{\"channel\":\"init\",\"data\":{{}}}}\n\n"
    ))
}

/// The keep-alive: a timestamp clients feed to `new Date(…)`.
pub fn ping(now: &str) -> Bytes {
    Bytes::from(format!("event: ping\ndata: {now}\n\n"))
}

/// Tells a resuming client that events it missed are gone: it must reload its state.
pub fn reload(last_event_id: &str, reason: &str) -> Bytes {
    let payload = json!({ "reason": reason, "lastEventId": last_event_id });
    Bytes::from(format!("event: reload\ndata: {payload}\n\n"))
}

/// The last bytes of a stream closed for falling behind (the client resumes from its last id).
pub const FAREWELL: &[u8] = b": closed: this stream fell too far behind; reconnect to resume\n\n";

#[cfg(test)]
mod tests {
    use super::*;
    use router::{Operation, Payload};

    fn change(operation: Operation) -> Outbound {
        Outbound::Change(ChangeMessage {
            collection: "company".into(),
            operation,
            id: "7b6c".into(),
            data: json!({"name": "Acme", "id": "7b6c"}),
            seq: 42,
            ts: "2026-12-03T09:00:00.000000Z".into(),
        })
    }

    fn text(message: &Outbound) -> String {
        match SseEncoder.encode(message) {
            Some(Frame::Whole(bytes)) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn database_events_have_restdb_shapes() {
        assert_eq!(
            text(&change(Operation::Create)),
            "id: 42\nevent: post\ndata: {\"event\":\"post\",\"collection\":\"company\",\"data\":{\"_id\":\"7b6c\",\"name\":\"Acme\",\"id\":\"7b6c\"},\"ts\":\"2026-12-03T09:00:00.000000Z\"}\n\n"
        );
        assert!(text(&change(Operation::Update)).contains(
            "event: put\ndata: {\"event\":\"put\",\"collection\":\"company\",\"data\":\"7b6c\""
        ));
        assert!(text(&change(Operation::Delete)).contains("\"data\":[\"7b6c\"]"));
    }

    #[test]
    fn custom_events_are_publish_events_with_their_id() {
        let event = Outbound::Event(CustomEvent {
            name: "GOAL".into(),
            data: Payload::Json(json!({"team": "home"})),
            id: "42-9".into(),
        });
        assert_eq!(
            text(&event),
            "id: 42-9\nevent: publish\ndata: {\"event\":\"GOAL\",\"data\":{\"team\":\"home\"}}\n\n"
        );
        let message = Outbound::Invocation(router::Invocation::new("x", vec![]));
        assert!(SseEncoder.encode(&message).is_none());
    }
}
