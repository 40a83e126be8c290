//! The router's messages as Web PubSub `message`s: a channel message is
//! `{type:"message", from:"group", group, fromUserId, dataType, data}`, a change the same
//! from the collection's group with the change as `json` data (PRODUCT.md section 5), a
//! direct message `from:"server"`, a close `system/disconnected`. On the reliable protocol
//! each data message is a [`Frame::Stamped`]: encoded once, with a hole where each recipient's
//! `sequenceId` goes.

use crate::frames::{self, write_data, write_optional, write_str};
use crate::Subprotocol;
use bytes::Bytes;
use router::{Encoder, Frame, Outbound, Payload, ProtocolId, Stamped};
use std::sync::Arc;

pub const JSON_PROTOCOL: ProtocolId = ProtocolId::new("webpubsub.json");
pub const RELIABLE_PROTOCOL: ProtocolId = ProtocolId::new("webpubsub.json.reliable");

pub struct WebPubSubEncoder {
    subprotocol: Subprotocol,
    /// `<api-name>:`, before a collection's name in its changes' `group`.
    entity_prefix: Arc<str>,
}

impl WebPubSubEncoder {
    pub fn new(subprotocol: Subprotocol, api_name: &str) -> Arc<Self> {
        Arc::new(Self {
            subprotocol,
            entity_prefix: format!("{api_name}:").into(),
        })
    }

    pub fn subprotocol(&self) -> Subprotocol {
        self.subprotocol
    }

    /// Close an open message: plain, or with a hole for the sequence id.
    fn finish(&self, mut out: Vec<u8>) -> Frame {
        if self.subprotocol.is_reliable() {
            out.extend_from_slice(br#","sequenceId":"#);
            Frame::Stamped(Stamped {
                head: out.into(),
                tail: Bytes::from_static(b"}"),
            })
        } else {
            out.push(b'}');
            Frame::Whole(out.into())
        }
    }
}

fn group_message(
    out: &mut Vec<u8>,
    group: &str,
    from_user_id: Option<Option<&str>>,
    data: &Payload,
) {
    out.extend_from_slice(br#"{"type":"message","from":"group","group":"#);
    write_str(out, group);
    if let Some(user) = from_user_id {
        out.extend_from_slice(br#","fromUserId":"#);
        write_optional(out, user);
    }
    out.push(b',');
    write_data(out, data);
}

impl Encoder for WebPubSubEncoder {
    fn protocol(&self) -> ProtocolId {
        match self.subprotocol {
            Subprotocol::Json => JSON_PROTOCOL,
            Subprotocol::JsonReliable => RELIABLE_PROTOCOL,
        }
    }

    fn encode(&self, message: &Outbound) -> Option<Frame> {
        let mut out = Vec::with_capacity(128);
        match message {
            Outbound::Group(message) => group_message(
                &mut out,
                &message.group,
                Some(message.from_user_id.as_deref()),
                &message.data,
            ),
            Outbound::Change(change) => {
                // Changes are rare next to channel traffic: building the value keeps one
                // shape for every protocol.
                let group = format!("{}{}", self.entity_prefix, change.collection);
                group_message(&mut out, &group, None, &Payload::Json(change.to_json()));
            }
            Outbound::Direct(message) => {
                out.extend_from_slice(br#"{"type":"message","from":"server","#);
                write_data(&mut out, &message.data);
            }
            Outbound::Close(close) => {
                let reason = close
                    .reason
                    .as_deref()
                    .unwrap_or("The server closed the connection.");
                return Some(Frame::Whole(frames::disconnected(reason)));
            }
            // `/realtime`'s custom events and SignalR invocations have no Web PubSub form.
            Outbound::Event(_) | Outbound::Invocation(_) => return None,
        }
        Some(self.finish(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router::{ChangeMessage, DirectMessage, GroupMessage, Operation};
    use serde_json::{json, Value};

    fn whole(encoder: &WebPubSubEncoder, message: &Outbound) -> Value {
        match encoder.encode(message) {
            Some(Frame::Whole(bytes)) => serde_json::from_slice(&bytes).unwrap(),
            other => panic!("a whole frame, got {other:?}"),
        }
    }

    fn stamped(encoder: &WebPubSubEncoder, message: &Outbound, id: u64) -> Value {
        match encoder.encode(message) {
            Some(Frame::Stamped(stamped)) => serde_json::from_slice(&stamped.stamp(id)).unwrap(),
            other => panic!("a stamped frame, got {other:?}"),
        }
    }

    #[test]
    fn messages_have_the_services_shapes_and_reliable_ones_a_sequence_id() {
        let json = WebPubSubEncoder::new(Subprotocol::Json, "app");
        let reliable = WebPubSubEncoder::new(Subprotocol::JsonReliable, "app");
        let group = Outbound::Group(GroupMessage {
            group: "app:room".into(),
            data: Payload::Text("hi".into()),
            from_user_id: Some("alice".into()),
            from_connection_id: Some("c".into()),
        });
        let expected = json!({"type":"message","from":"group","group":"app:room","fromUserId":"alice","dataType":"text","data":"hi"});
        assert_eq!(whole(&json, &group), expected);
        let mut with_id = expected.clone();
        with_id["sequenceId"] = json!(41);
        assert_eq!(stamped(&reliable, &group, 41), with_id);

        let change = Outbound::Change(ChangeMessage {
            collection: "products".into(),
            operation: Operation::Create,
            id: "i".into(),
            data: json!({"n": 1}),
            seq: 5,
            ts: "t".into(),
        });
        assert_eq!(
            whole(&json, &change),
            json!({"type":"message","from":"group","group":"app:products","dataType":"json",
                   "data":{"collection":"products","operation":"create","id":"i","data":{"n":1},"seq":5,"ts":"t"}})
        );
        let direct = Outbound::Direct(DirectMessage {
            data: Payload::Binary(vec![255].into()),
        });
        assert_eq!(
            stamped(&reliable, &direct, 1),
            json!({"type":"message","from":"server","dataType":"binary","data":"/w==","sequenceId":1})
        );
        let close = Outbound::Close(router::Disconnect { reason: None });
        assert_eq!(whole(&reliable, &close)["event"], "disconnected");
        assert_eq!(json.protocol(), JSON_PROTOCOL);
        assert_eq!(reliable.protocol(), RELIABLE_PROTOCOL);
    }
}
