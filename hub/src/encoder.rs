//! SignalR's bytes for the router's neutral messages: a channel message is the `message`
//! invocation, a change the `change` invocation (PRODUCT.md section 5), an application's
//! invocation itself. One encoder per hub protocol, shared by its connections.

use crate::protocol::{Close, Field, HubMessage, HubProtocol};
use bytes::Bytes;
use router::{Encoder, Frame, Outbound, Payload, ProtocolId};
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

/// A payload as a field, borrowed: binary is `bin` in MessagePack and base64 text in JSON, as
/// ASP.NET Core writes a `byte[]`.
fn data_field(data: &Payload) -> Field<'_> {
    match data {
        Payload::Json(value) => Field::Value(value),
        Payload::Text(text) => Field::Str(text),
        Payload::Binary(bytes) => Field::Bytes(bytes),
    }
}

fn optional(text: &Option<Arc<str>>) -> Field<'_> {
    text.as_deref().map_or(Field::Null, Field::Str)
}

impl Encoder for HubEncoder {
    fn protocol(&self) -> ProtocolId {
        self.id
    }

    fn encode(&self, message: &Outbound) -> Option<Frame> {
        let mut out = Vec::with_capacity(128);
        match message {
            // `{group, data, fromUserId, fromConnectionId}`, in that order.
            Outbound::Group(message) => {
                let argument = [
                    ("group", Field::Str(&message.group)),
                    ("data", data_field(&message.data)),
                    ("fromUserId", optional(&message.from_user_id)),
                    ("fromConnectionId", optional(&message.from_connection_id)),
                ];
                self.protocol
                    .encode_object_invocation("message", &argument, &mut out)
            }
            // The shape of `ChangeMessage::to_json`, without copying the item.
            Outbound::Change(change) => {
                let argument = [
                    ("collection", Field::Str(&change.collection)),
                    ("operation", Field::Str(change.operation.as_str())),
                    ("id", Field::Str(&change.id)),
                    ("data", Field::Value(&change.data)),
                    ("seq", Field::Int(change.seq)),
                    ("ts", Field::Str(&change.ts)),
                ];
                self.protocol
                    .encode_object_invocation("change", &argument, &mut out)
            }
            Outbound::Invocation(invocation) => {
                self.protocol
                    .encode_invocation(&invocation.target, &invocation.arguments, &mut out)
            }
            // A server message outside any group: the `message` shape with a null group.
            Outbound::Direct(message) => {
                let argument = [
                    ("group", Field::Null),
                    ("data", data_field(&message.data)),
                    ("fromUserId", Field::Null),
                    ("fromConnectionId", Field::Null),
                ];
                self.protocol
                    .encode_object_invocation("message", &argument, &mut out)
            }
            // The server ends the connection: a Close the client does not reconnect after.
            Outbound::Close(close) => {
                let message = HubMessage::Close(Close {
                    error: close.reason.as_deref().map(str::to_owned),
                    allow_reconnect: false,
                });
                return Some(Frame::Whole(self.protocol.to_bytes(&message)));
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
    arguments: Vec<crate::protocol::HubValue>,
) -> Bytes {
    let arguments = arguments.into_iter().map(Into::into).collect();
    let invocation = Outbound::Invocation(router::Invocation::new(target, arguments));
    match HubEncoder::new(Arc::new(protocol)).encode(&invocation) {
        Some(Frame::Whole(bytes)) => bytes,
        other => panic!("a whole frame, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{HubValue, JsonHubProtocol, MessagePackHubProtocol};
    use router::{ChangeMessage, GroupMessage, Invocation, Operation};
    use serde_json::json;

    fn whole(frame: Option<Frame>) -> Vec<u8> {
        match frame {
            Some(Frame::Whole(bytes)) => bytes.to_vec(),
            other => panic!("a whole frame, got {other:?}"),
        }
    }

    #[test]
    fn server_messages_have_a_null_group_and_a_close_ends_without_reconnect() {
        let json = HubEncoder::new(Arc::new(JsonHubProtocol));
        let direct = Outbound::Direct(router::DirectMessage {
            data: Payload::Binary(vec![1, 2].into()),
        });
        assert_eq!(
            String::from_utf8(whole(json.encode(&direct))).unwrap(),
            "{\"type\":1,\"target\":\"message\",\"arguments\":[{\"group\":null,\"data\":\"AQI=\",\"fromUserId\":null,\"fromConnectionId\":null}]}\u{1e}"
        );
        let close = Outbound::Close(router::Disconnect {
            reason: Some("bye".into()),
        });
        assert_eq!(
            String::from_utf8(whole(json.encode(&close))).unwrap(),
            "{\"type\":7,\"error\":\"bye\"}\u{1e}",
            "allowReconnect is left out when false, as ASP.NET Core writes it"
        );
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

    /// An application's own hub protocol that implements only the required methods: the
    /// default `encode_object_invocation` goes through its `encode_invocation`.
    struct OwnProtocol;

    impl HubProtocol for OwnProtocol {
        fn name(&self) -> &'static str {
            "own"
        }
        fn version(&self) -> u32 {
            1
        }
        fn transfer_format(&self) -> negotiate::TransferFormat {
            negotiate::TransferFormat::Text
        }
        fn decode(
            &self,
            input: &mut bytes::BytesMut,
            limit: usize,
        ) -> Result<crate::protocol::Decoded, crate::protocol::ProtocolError> {
            JsonHubProtocol.decode(input, limit)
        }
        fn encode_message(&self, message: &crate::protocol::HubMessage, out: &mut Vec<u8>) {
            JsonHubProtocol.encode_message(message, out)
        }
        fn encode_invocation(
            &self,
            target: &str,
            arguments: &[serde_json::Value],
            out: &mut Vec<u8>,
        ) {
            JsonHubProtocol.encode_invocation(target, arguments, out)
        }
    }

    #[test]
    fn a_protocol_without_the_direct_writer_gets_the_same_bytes_by_default() {
        let own = HubEncoder::new(Arc::new(OwnProtocol));
        let json = HubEncoder::new(Arc::new(JsonHubProtocol));
        assert_eq!(own.protocol().as_str(), "signalr.own");
        let message = Outbound::Group(GroupMessage {
            group: "app:g".into(),
            data: Payload::Json(json!({"n": [1, -2, 2.5]})),
            from_user_id: None,
            from_connection_id: Some("c".into()),
        });
        assert_eq!(whole(own.encode(&message)), whole(json.encode(&message)));
    }

    /// The direct writers make exactly the bytes of the same object as a `Value`.
    #[test]
    fn object_invocations_are_the_bytes_of_the_same_value() {
        let data = json!({"nested": [1, -2, 2.5, "é", null, true], "big": u64::MAX});
        for protocol in [
            Arc::new(JsonHubProtocol) as Arc<dyn HubProtocol>,
            Arc::new(MessagePackHubProtocol),
        ] {
            let encoder = HubEncoder::new(protocol.clone());
            let change = ChangeMessage {
                collection: "c".into(),
                operation: Operation::Update,
                id: "i".into(),
                data: data.clone(),
                seq: 1 << 40,
                ts: "t".into(),
            };
            let mut expected = Vec::new();
            protocol.encode_invocation("change", &[change.to_json()], &mut expected);
            assert_eq!(whole(encoder.encode(&Outbound::Change(change))), expected);
            for payload in [
                Payload::Json(data.clone()),
                Payload::Text("t\"x".into()),
                Payload::Binary(Bytes::from_static(b"\x00\xff")),
            ] {
                let message = GroupMessage {
                    group: "app:g".into(),
                    data: payload.clone(),
                    from_user_id: Some("u".into()),
                    from_connection_id: None,
                };
                let mut value = HubValue::from(json!({
                    "group": "app:g",
                    "data": payload.to_json(),
                    "fromUserId": "u",
                    "fromConnectionId": null,
                }));
                // Binary is the protocol's own: `bin` in MessagePack, base64 in JSON.
                if let (Payload::Binary(bytes), HubValue::Map(map)) = (&payload, &mut value) {
                    map.insert("data".into(), HubValue::Binary(bytes.clone()));
                }
                let expected =
                    protocol.to_bytes(&HubMessage::Invocation(crate::protocol::Invocation {
                        headers: Default::default(),
                        invocation_id: None,
                        target: "message".into(),
                        arguments: vec![value],
                        stream_ids: vec![],
                    }));
                assert_eq!(
                    whole(encoder.encode(&Outbound::Group(message))),
                    expected.to_vec()
                );
            }
        }
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
