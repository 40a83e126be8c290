//! Properties of the MessagePack codec over generated messages and bytes.

use super::*;
use proptest::prelude::*;

/// JSON values that survive a round trip exactly (floats do, in binary).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
        ".{30,40}".prop_map(Value::from),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Value::from),
        (any::<i64>(), 0..1_000_000_000u32).prop_map(|(s, n)| time(s, n)),
        (0..1i64 << 34, 0..1_000_000_000u32).prop_map(|(s, n)| time(s, n)),
        (0..1i64 << 32).prop_map(|s| time(s, 0)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(inner.clone(), 15..20).prop_map(Value::from),
            prop::collection::btree_map(".{0,5}", inner, 0..4)
                .prop_map(|m| Value::Map(m.into_iter().collect())),
        ]
    })
}

/// Every kind of hub message, with MessagePack's values (binary and time among them).
fn hub_message() -> impl Strategy<Value = HubMessage> {
    crate::protocol::proptests::messages_of(value)
}

/// Decode until the input runs out or an error stops it; every step consumes bytes.
fn decode_everything(bytes: &[u8], limit: usize) -> Result<Vec<HubMessage>, ProtocolError> {
    let mut input = BytesMut::from(bytes);
    let mut out = Vec::new();
    loop {
        let before = input.len();
        match MessagePackHubProtocol.decode(&mut input, limit)? {
            Decoded::Incomplete => return Ok(out),
            Decoded::Unknown => {}
            Decoded::Message(m) => out.push(m),
        }
        assert!(input.len() < before, "a decoded message consumed nothing");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_everything(&bytes, 1024);
    }

    /// Random bodies behind a correct prefix reach the body parser.
    #[test]
    fn arbitrary_bodies_never_panic(
        kind in 0u8..12,
        length in 0u8..8,
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![0x90 | (length & 0x0f), kind];
        bytes.extend_from_slice(&body);
        let _ = decode_everything(&frame(&bytes), 1024);
    }

    /// Valid frames with one byte changed.
    #[test]
    fn corrupted_frames_never_panic(
        m in hub_message(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut bytes = MessagePackHubProtocol.to_bytes(&m).to_vec();
        let at = position.index(bytes.len());
        bytes[at] = byte;
        let _ = decode_everything(&bytes, LIMIT);
    }

    #[test]
    fn messages_round_trip(messages in prop::collection::vec(hub_message(), 1..5)) {
        let mut bytes = Vec::new();
        for m in &messages {
            MessagePackHubProtocol.encode_message(m, &mut bytes);
        }
        prop_assert_eq!(decode_everything(&bytes, usize::MAX).unwrap(), messages);
    }

    #[test]
    fn fan_out_invocations_round_trip(
        target in ".{0,10}",
        arguments in prop::collection::vec(value(), 0..4),
    ) {
        let bytes = crate::encoder::fan_out(
            MessagePackHubProtocol,
            target.clone(),
            arguments.clone(),
        );
        // The router's invocations carry JSON: binary and time arrive as their text.
        let arguments = arguments.iter().map(|a| Value::from(a.to_json())).collect();
        prop_assert_eq!(
            decode_everything(&bytes, usize::MAX).unwrap(),
            vec![HubMessage::Invocation(Invocation {
                headers: Headers::new(),
                invocation_id: None,
                target,
                arguments,
                stream_ids: vec![],
            })]
        );
    }
}
