//! SignalR's bytes for the router's neutral messages: a channel message is the `message`
//! invocation, a change the `change` invocation (PRODUCT.md section 5), an application's
//! invocation itself. One encoder per hub protocol, shared by its connections.

use crate::protocol::HubProtocol;
use bytes::Bytes;
use router::{Encoder, Frame, GroupMessage, Outbound, ProtocolId};
use serde_json::{Map, Value};
use std::sync::Arc;

pub(crate) struct HubEncoder {
    protocol: Arc<dyn HubProtocol>,
    id: ProtocolId,
}

impl HubEncoder {
    pub fn new(protocol: Arc<dyn HubProtocol>) -> Arc<Self> {
        let id = match protocol.name() {
            "json" => ProtocolId::new("signalr.json"),
            "messagepack" => ProtocolId::new("signalr.messagepack"),
            // An application's own hub protocol: one leaked name per protocol, at build time.
            other => ProtocolId::new(Box::leak(format!("signalr.{other}").into_boxed_str())),
        };
        Arc::new(Self { protocol, id })
    }

    pub fn protocol_name(&self) -> &'static str {
        self.protocol.name()
    }
}

/// `{group, data, fromUserId, fromConnectionId}`, in that order.
pub(crate) fn message_argument(message: &GroupMessage) -> Value {
    let mut object = Map::with_capacity(4);
    object.insert("group".into(), Value::String(message.group.to_string()));
    object.insert("data".into(), message.data.to_json());
    object.insert("fromUserId".into(), optional(&message.from_user_id));
    object.insert(
        "fromConnectionId".into(),
        optional(&message.from_connection_id),
    );
    Value::Object(object)
}

fn optional(text: &Option<Arc<str>>) -> Value {
    text.as_ref()
        .map_or(Value::Null, |text| Value::String(text.to_string()))
}

impl Encoder for HubEncoder {
    fn protocol(&self) -> ProtocolId {
        self.id
    }

    fn encode(&self, message: &Outbound) -> Option<Frame> {
        let mut out = Vec::with_capacity(128);
        match message {
            Outbound::Group(message) => {
                self.protocol
                    .encode_invocation("message", &[message_argument(message)], &mut out)
            }
            Outbound::Change(change) => {
                self.protocol
                    .encode_invocation("change", &[change.to_json()], &mut out)
            }
            Outbound::Invocation(invocation) => {
                self.protocol
                    .encode_invocation(&invocation.target, &invocation.arguments, &mut out)
            }
            // Custom events are `/realtime`'s; SignalR clients have no method for them.
            Outbound::Event(_) => return None,
        }
        Some(Frame::Whole(Bytes::from(out)))
    }
}

/// The fan-out frame of an invocation in `protocol`, as group members get it.
#[cfg(test)]
pub(crate) fn fan_out(
    protocol: impl HubProtocol,
    target: impl Into<std::borrow::Cow<'static, str>>,
    arguments: Vec<Value>,
) -> Bytes {
    let invocation = Outbound::Invocation(router::Invocation::new(target, arguments));
    match HubEncoder::new(Arc::new(protocol)).encode(&invocation) {
        Some(Frame::Whole(bytes)) => bytes,
        other => panic!("a whole frame, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{JsonHubProtocol, MessagePackHubProtocol};
    use router::{ChangeMessage, Invocation, Operation, Payload};
    use serde_json::json;

    fn whole(frame: Option<Frame>) -> Vec<u8> {
        match frame {
            Some(Frame::Whole(bytes)) => bytes.to_vec(),
            other => panic!("a whole frame, got {other:?}"),
        }
    }

    #[test]
    fn channel_messages_and_changes_are_the_product_invocations() {
        let json = HubEncoder::new(Arc::new(JsonHubProtocol));
        let message = GroupMessage {
            group: "app:r".into(),
            data: Payload::Json(json!({"a": 1})),
            from_user_id: None,
            from_connection_id: Some("c1".into()),
        };
        assert_eq!(
            String::from_utf8(whole(json.encode(&Outbound::Group(message)))).unwrap(),
            "{\"type\":1,\"target\":\"message\",\"arguments\":[{\"group\":\"app:r\",\"data\":{\"a\":1},\"fromUserId\":null,\"fromConnectionId\":\"c1\"}]}\u{1e}"
        );
        let change = ChangeMessage {
            collection: "products".into(),
            operation: Operation::Delete,
            id: "i".into(),
            data: json!({"name": "x"}),
            seq: 3,
            ts: "2026-12-03T00:00:00.000Z".into(),
        };
        assert_eq!(
            String::from_utf8(whole(json.encode(&Outbound::Change(change)))).unwrap(),
            "{\"type\":1,\"target\":\"change\",\"arguments\":[{\"collection\":\"products\",\"operation\":\"delete\",\"id\":\"i\",\"data\":{\"name\":\"x\"},\"seq\":3,\"ts\":\"2026-12-03T00:00:00.000Z\"}]}\u{1e}"
        );
    }

    #[test]
    fn invocations_are_written_as_given_and_ids_name_the_protocol() {
        let messagepack = HubEncoder::new(Arc::new(MessagePackHubProtocol));
        assert_eq!(messagepack.protocol().as_str(), "signalr.messagepack");
        let invocation = Outbound::Invocation(Invocation::new("m", vec![json!({"a": 1})]));
        let mut expected = Vec::new();
        MessagePackHubProtocol.encode_invocation("m", &[json!({"a": 1})], &mut expected);
        assert_eq!(whole(messagepack.encode(&invocation)), expected);
        let event = Outbound::Event(router::CustomEvent {
            name: "e".into(),
            data: Payload::Text("t".into()),
            id: "1".into(),
        });
        assert!(messagepack.encode(&event).is_none());
    }
}
