//! Properties every decoder keeps, whatever the bytes: no panic, progress or a clean error,
//! and whatever is encoded decodes to itself.

use super::*;
use crate::handshake;
use proptest::prelude::*;

/// The tests build hub values with JSON literals.
type Value = HubValue;
macro_rules! json {
    ($($value:tt)+) => {
        HubValue::from(serde_json::json!($($value)+))
    };
}

/// JSON values that survive a round trip exactly (no floats: `1.0` reads back as `1.0` but
/// generated floats may not print identically).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Map(m.into_iter().collect())),
        ]
    })
}

pub(crate) fn headers() -> impl Strategy<Value = Headers> {
    prop::collection::btree_map(".{0,6}", ".{0,6}", 0..3)
}

fn message() -> impl Strategy<Value = HubMessage> {
    messages_of(value)
}

/// Every kind of hub message, with argument, item and result values from `value` (each
/// codec's test picks the values it keeps exactly).
pub(crate) fn messages_of<V>(value: fn() -> V) -> impl Strategy<Value = HubMessage>
where
    V: Strategy<Value = HubValue> + 'static,
{
    let id = "[a-zA-Z0-9-]{1,8}";
    prop_oneof![
        (
            headers(),
            prop::option::of(id),
            ".{0,10}",
            prop::collection::vec(value(), 0..4),
            prop::collection::vec(id, 0..2)
        )
            .prop_map(|(headers, invocation_id, target, arguments, stream_ids)| {
                HubMessage::Invocation(Invocation {
                    headers,
                    invocation_id,
                    target,
                    arguments,
                    stream_ids,
                })
            }),
        (
            headers(),
            id,
            ".{0,10}",
            prop::collection::vec(value(), 0..3)
        )
            .prop_map(
                |(headers, id, target, arguments)| HubMessage::StreamInvocation(Invocation {
                    headers,
                    invocation_id: Some(id),
                    target,
                    arguments,
                    stream_ids: vec![],
                })
            ),
        (headers(), id, value()).prop_map(|(headers, invocation_id, item)| {
            HubMessage::StreamItem(StreamItem {
                headers,
                invocation_id,
                item,
            })
        }),
        (
            headers(),
            id,
            prop_oneof![
                Just(Outcome::Void),
                value().prop_map(Outcome::Result),
                ".{0,10}".prop_map(Outcome::Error),
            ]
        )
            .prop_map(|(headers, invocation_id, outcome)| {
                HubMessage::Completion(Completion {
                    headers,
                    invocation_id,
                    outcome,
                })
            }),
        (headers(), id).prop_map(|(headers, invocation_id)| HubMessage::CancelInvocation {
            headers,
            invocation_id: invocation_id.to_owned(),
        }),
        Just(HubMessage::Ping),
        (prop::option::of(".{0,10}"), any::<bool>()).prop_map(|(error, allow_reconnect)| {
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        }),
        any::<u64>().prop_map(|sequence_id| HubMessage::Ack { sequence_id }),
        any::<u64>().prop_map(|sequence_id| HubMessage::Sequence { sequence_id }),
    ]
}

/// Decode until the input runs out or an error stops it; every step consumes bytes.
fn decode_everything(
    protocol: &dyn HubProtocol,
    bytes: &[u8],
) -> Result<Vec<HubMessage>, ProtocolError> {
    let mut input = bytes::BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        let before = input.len();
        match protocol.decode(&mut input, 1024)? {
            Decoded::Incomplete => return Ok(out),
            Decoded::Unknown => {}
            Decoded::Message(message) => out.push(message),
        }
        assert!(input.len() < before, "a decoded message consumed nothing");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn json_decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_everything(&JsonHubProtocol, &bytes);
    }

    #[test]
    fn json_decoding_near_valid_records_never_panics(
        fields in prop::collection::vec(("[a-zA-Z]{1,12}", value()), 0..6),
        kind in prop::option::of(-2i64..12),
    ) {
        let mut object: HubMap = fields.into_iter().collect();
        if let Some(kind) = kind {
            object.insert("type".into(), json!(kind));
        }
        let mut bytes = serde_json::to_vec(&HubValue::Map(object)).unwrap();
        bytes.push(RECORD_SEPARATOR);
        let _ = decode_everything(&JsonHubProtocol, &bytes);
    }

    #[test]
    fn json_round_trips(messages in prop::collection::vec(message(), 1..5)) {
        let mut bytes = Vec::new();
        for message in &messages {
            JsonHubProtocol.encode_message(message, &mut bytes);
        }
        let mut input = bytes::BytesMut::from(&bytes[..]);
        let mut decoded = Vec::new();
        while let Decoded::Message(message) = JsonHubProtocol.decode(&mut input, usize::MAX).unwrap() {
            decoded.push(message);
        }
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn handshake_parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut input = bytes::BytesMut::from(&bytes[..]);
        let _ = handshake::parse_request(&mut input, 100);
    }
}
