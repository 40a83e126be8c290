use super::*;

/// The tests build hub values with JSON literals.
type Value = HubValue;
macro_rules! json {
    ($($value:tt)+) => {
        HubValue::from(serde_json::json!($($value)+))
    };
}

const LIMIT: usize = 32 * 1024;

/// `body` behind its varint length prefix.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut prefix = [0; 10];
    let size = prefix_bytes(body.len(), &mut prefix);
    let mut out = prefix[..size].to_vec();
    out.extend_from_slice(body);
    out
}

fn decode(bytes: &[u8]) -> Result<Decoded, ProtocolError> {
    let mut input = BytesMut::from(bytes);
    let decoded = MessagePackHubProtocol.decode(&mut input, LIMIT);
    if matches!(decoded, Ok(Decoded::Message(_) | Decoded::Unknown)) {
        assert!(input.is_empty(), "{bytes:x?} left {:x?}", &input[..]);
    }
    decoded
}

/// Decode one framed body.
fn message(body: &[u8]) -> HubMessage {
    match decode(&frame(body)) {
        Ok(Decoded::Message(m)) => m,
        other => panic!("{body:x?}: {other:?}"),
    }
}

fn error(body: &[u8]) -> String {
    match decode(&frame(body)) {
        Err(ProtocolError::MessagePack(text)) => text,
        other => panic!("{body:x?}: expected an error, got {other:?}"),
    }
}

/// The body of an encoded message, checking its prefix.
fn encoded(m: &HubMessage) -> Vec<u8> {
    let bytes = MessagePackHubProtocol.to_bytes(m).to_vec();
    let (prefix, length) = read_prefix(&bytes, usize::MAX).unwrap().unwrap();
    assert_eq!(prefix + length, bytes.len());
    bytes[prefix..].to_vec()
}

fn invocation(id: Option<&str>, target: &str, arguments: Vec<Value>) -> Invocation {
    Invocation {
        headers: Headers::new(),
        invocation_id: id.map(Into::into),
        target: target.into(),
        arguments,
        stream_ids: vec![],
    }
}

fn completion(outcome: Outcome) -> HubMessage {
    HubMessage::Completion(Completion {
        headers: Headers::new(),
        invocation_id: "xyz".into(),
        outcome,
    })
}

/// A single argument as the reader sees it.
fn argument(value: &[u8]) -> Result<Value, String> {
    let mut body = vec![0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x91];
    body.extend_from_slice(value);
    match decode(&frame(&body)) {
        Ok(Decoded::Message(HubMessage::Invocation(mut i))) => Ok(i.arguments.remove(0)),
        Err(ProtocolError::MessagePack(text)) => Err(text),
        other => panic!("{value:x?}: {other:?}"),
    }
}

/// A value as the writer writes it.
fn written(value: Value) -> Vec<u8> {
    let body = encoded(&completion(Outcome::Result(value)));
    // [3, {}, "xyz", 3, value]
    body[8..].to_vec()
}

// The examples of the protocol specification (all .NET-shaped): read and written identically.
const SPEC_INVOCATION: &[u8] = &[
    0x96, 0x01, 0x80, 0xa3, b'x', b'y', b'z', 0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a,
    0x90,
];
const SPEC_NON_BLOCKING: &[u8] = &[
    0x96, 0x01, 0x80, 0xc0, 0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a, 0x90,
];
const SPEC_STREAM_INVOCATION: &[u8] = &[
    0x96, 0x04, 0x80, 0xa3, b'x', b'y', b'z', 0xa6, b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a,
    0x90,
];
const SPEC_HEADERS: &[u8] = &[
    0x96, 0x01, 0x82, 0xa1, b'x', 0xa1, b'y', 0xa1, b'z', 0xa1, b'z', 0xa3, b'x', b'y', b'z', 0xa6,
    b'm', b'e', b't', b'h', b'o', b'd', 0x91, 0x2a, 0x90,
];
const SPEC_STREAM_ITEM: &[u8] = &[0x94, 0x02, 0x80, 0xa3, b'x', b'y', b'z', 0x2a];
const SPEC_ERROR: &[u8] = &[
    0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x01, 0xa5, b'E', b'r', b'r', b'o', b'r',
];
const SPEC_VOID: &[u8] = &[0x94, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x02];
const SPEC_RESULT: &[u8] = &[0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x03, 0x2a];
const SPEC_CANCEL: &[u8] = &[0x93, 0x05, 0x80, 0xa3, b'x', b'y', b'z'];
const SPEC_CLOSE_RECONNECT: &[u8] = &[0x93, 0x07, 0xa3, b'x', b'y', b'z', 0xc3];

fn spec_messages() -> Vec<(&'static [u8], HubMessage)> {
    let method = || invocation(Some("xyz"), "method", vec![json!(42)]);
    vec![
        (SPEC_INVOCATION, HubMessage::Invocation(method())),
        (
            SPEC_NON_BLOCKING,
            HubMessage::Invocation(invocation(None, "method", vec![json!(42)])),
        ),
        (
            SPEC_STREAM_INVOCATION,
            HubMessage::StreamInvocation(method()),
        ),
        (
            SPEC_HEADERS,
            HubMessage::Invocation(Invocation {
                headers: [("x", "y"), ("z", "z")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                ..method()
            }),
        ),
        (
            SPEC_STREAM_ITEM,
            HubMessage::StreamItem(StreamItem {
                headers: Headers::new(),
                invocation_id: "xyz".into(),
                item: json!(42),
            }),
        ),
        (SPEC_ERROR, completion(Outcome::Error("Error".into()))),
        (SPEC_VOID, completion(Outcome::Void)),
        (SPEC_RESULT, completion(Outcome::Result(json!(42)))),
        (
            SPEC_CANCEL,
            HubMessage::CancelInvocation {
                headers: Headers::new(),
                invocation_id: "xyz".into(),
            },
        ),
        (&[0x91, 0x06], HubMessage::Ping),
        (
            SPEC_CLOSE_RECONNECT,
            HubMessage::Close(Close {
                error: Some("xyz".into()),
                allow_reconnect: true,
            }),
        ),
        (
            &[0x93, 0x07, 0xc0, 0xc2],
            HubMessage::Close(Close::default()),
        ),
        (&[0x92, 0x08, 0x24], HubMessage::Ack { sequence_id: 36 }),
        (
            &[0x92, 0x09, 0x13],
            HubMessage::Sequence { sequence_id: 19 },
        ),
    ]
}

#[test]
fn name_version_and_format() {
    let protocol = MessagePackHubProtocol;
    assert_eq!(protocol.name(), "messagepack");
    assert_eq!(protocol.version(), 2);
    assert_eq!(protocol.transfer_format(), TransferFormat::Binary);
}

#[test]
fn spec_examples_read_and_write_byte_for_byte() {
    for (body, m) in spec_messages() {
        assert_eq!(message(body), m, "reading {body:x?}");
        assert_eq!(encoded(&m), body, "writing {m:?}");
    }
}

#[test]
fn golden_frames() {
    assert_eq!(
        MessagePackHubProtocol.to_bytes(&HubMessage::Ping)[..],
        [0x02, 0x91, 0x06]
    );
    assert_eq!(
        decode(&[0x02, 0x91, 0x06]),
        Ok(Decoded::Message(HubMessage::Ping))
    );
    // JS Close: [7, nil]; .NET Close: [7, nil, false].
    assert_eq!(
        decode(&[0x03, 0x92, 0x07, 0xc0]),
        Ok(Decoded::Message(HubMessage::Close(Close::default())))
    );
    assert_eq!(
        MessagePackHubProtocol.to_bytes(&HubMessage::Close(Close::default()))[..],
        [0x04, 0x93, 0x07, 0xc0, 0xc2]
    );
    // JS Close with an error, 2 elements.
    assert_eq!(
        message(&[0x92, 0x07, 0xa1, b'e']),
        HubMessage::Close(Close {
            error: Some("e".into()),
            allow_reconnect: false
        })
    );
    // An empty Close error is kept as written (only invocation ids treat "" as none).
    assert_eq!(
        message(&[0x92, 0x07, 0xa0]),
        HubMessage::Close(Close {
            error: Some(String::new()),
            allow_reconnect: false
        })
    );
}

#[test]
fn invocations_as_the_js_client_sends_them() {
    // [1, {}, "0", "Send", [1]]: 5 elements, no streamIds.
    let js = [
        0x0c, 0x95, 0x01, 0x80, 0xa1, b'0', 0xa4, b'S', b'e', b'n', b'd', 0x91, 0x01,
    ];
    assert_eq!(
        decode(&js),
        Ok(Decoded::Message(HubMessage::Invocation(invocation(
            Some("0"),
            "Send",
            vec![json!(1)]
        ))))
    );
    // Non-blocking: nil id, 5 elements.
    assert_eq!(
        message(&[0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x90]),
        HubMessage::Invocation(invocation(None, "m", vec![]))
    );
    // An empty-string id is none.
    assert_eq!(
        message(&[0x96, 0x01, 0x80, 0xa0, 0xa1, b'm', 0x90, 0x90]),
        HubMessage::Invocation(invocation(None, "m", vec![]))
    );
    // With an upload stream: 6 elements.
    let HubMessage::Invocation(i) = message(&[
        0x96, 0x01, 0x80, 0xa1, b'1', 0xa1, b'm', 0x90, 0x91, 0xa1, b'2',
    ]) else {
        panic!()
    };
    assert_eq!(i.stream_ids, ["2"]);
    // StreamInvocation, 5 elements.
    assert_eq!(
        message(&[0x95, 0x04, 0x80, 0xa1, b'1', 0xa1, b'm', 0x90]),
        HubMessage::StreamInvocation(invocation(Some("1"), "m", vec![]))
    );
    // Ack and Sequence with any integer width.
    for (body, id) in [
        (&[0x92, 0x08, 0xcc, 0x24][..], 36),
        (&[0x92, 0x08, 0xd0, 0x24][..], 36),
        (&[0x92, 0x08, 0xcd, 0x01, 0x00][..], 256),
        (&[0x92, 0x08, 0xd2, 0x00, 0x01, 0x00, 0x00][..], 65536),
        (
            &[
                0x92, 0x08, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ][..],
            u64::MAX,
        ),
    ] {
        assert_eq!(message(body), HubMessage::Ack { sequence_id: id });
    }
    assert_eq!(
        message(&[0x92, 0x09, 0xce, 0x00, 0x01, 0x00, 0x00]),
        HubMessage::Sequence { sequence_id: 65536 }
    );
}

#[test]
fn completions_of_every_kind() {
    // Kind 3 with nil: a void hub method as .NET answers it.
    assert_eq!(
        encoded(&completion(Outcome::Result(Value::Null))),
        [0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x03, 0xc0]
    );
    assert_eq!(
        message(&[0x95, 0x03, 0x80, 0xa3, b'x', b'y', b'z', 0x03, 0xc0]),
        completion(Outcome::Result(Value::Null))
    );
    // Kind 2 ends a stream: exactly 4 elements.
    assert_eq!(message(SPEC_VOID), completion(Outcome::Void));
    error(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x02, 0xc0]);
    error(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x03]);
    error(&[0x94, 0x03, 0x80, 0xa1, b'1', 0x01]);
    error(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x04, 0xc0]);
    // Kind 1 needs a string.
    error(&[0x95, 0x03, 0x80, 0xa1, b'1', 0x01, 0x05]);
}

#[test]
fn the_fan_out_encoder_writes_a_dotnet_invocation() {
    let expected = [
        0x0c, 0x96, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x91, 0x81, 0xa1, b'a', 0x01, 0x90,
    ];
    let broadcast = crate::encoder::fan_out(MessagePackHubProtocol, "m", vec![json!({"a": 1})]);
    assert_eq!(&broadcast[..], expected);
    let mut out = Vec::new();
    MessagePackHubProtocol.encode_invocation("m", &[serde_json::json!({"a": 1})], &mut out);
    assert_eq!(out, expected);
    assert_eq!(
        MessagePackHubProtocol.to_bytes(&HubMessage::Invocation(invocation(
            None,
            "m",
            vec![json!({"a": 1})]
        )))[..],
        expected
    );
}

#[test]
fn frames_append_to_what_is_already_in_the_buffer() {
    let big = HubMessage::Invocation(invocation(Some("1"), "T", vec![json!("x".repeat(20_000))]));
    let mut out = vec![0xaa, 0xbb];
    MessagePackHubProtocol.encode_message(&HubMessage::Ping, &mut out);
    MessagePackHubProtocol.encode_message(&big, &mut out);
    MessagePackHubProtocol.encode_invocation("m", &[serde_json::json!("y".repeat(300))], &mut out);
    MessagePackHubProtocol.encode_message(&HubMessage::Ping, &mut out);
    assert_eq!(out[..5], [0xaa, 0xbb, 0x02, 0x91, 0x06]);
    let mut input = BytesMut::from(&out[2..]);
    let mut decoded = Vec::new();
    while let Decoded::Message(m) = MessagePackHubProtocol.decode(&mut input, LIMIT).unwrap() {
        decoded.push(m);
    }
    assert_eq!(
        decoded,
        [
            HubMessage::Ping,
            big,
            HubMessage::Invocation(invocation(None, "m", vec![json!("y".repeat(300))])),
            HubMessage::Ping
        ]
    );
    assert!(input.is_empty());
}

#[test]
fn varints_of_one_two_and_three_bytes() {
    for (size, expected_prefix) in [(10, 1), (200, 2), (20_000, 3)] {
        let m = HubMessage::Invocation(invocation(Some("1"), "T", vec![json!("x".repeat(size))]));
        let bytes = MessagePackHubProtocol.to_bytes(&m);
        let (prefix, length) = read_prefix(&bytes, LIMIT).unwrap().unwrap();
        assert_eq!(prefix, expected_prefix, "{size}");
        assert_eq!(prefix + length, bytes.len());
        assert_eq!(decode(&bytes), Ok(Decoded::Message(m)));
    }
    // The boundaries, and the spec's example 0x80 0x29 = 5248.
    for (length, bytes) in [
        (0, &[0x00][..]),
        (127, &[0x7f][..]),
        (128, &[0x80, 0x01][..]),
        (5248, &[0x80, 0x29][..]),
        (16_383, &[0xff, 0x7f][..]),
        (16_384, &[0x80, 0x80, 0x01][..]),
        (i32::MAX as usize, &[0xff, 0xff, 0xff, 0xff, 0x07][..]),
    ] {
        let mut prefix = [0; 10];
        let size = prefix_bytes(length, &mut prefix);
        assert_eq!(&prefix[..size], bytes);
        assert_eq!(
            read_prefix(bytes, usize::MAX),
            Ok(Some((bytes.len(), length)))
        );
    }
    // A body of exactly 127 and 128 bytes.
    // [1, {}, nil, "T", [str 8], []] is 10 bytes and the text.
    for (text, body, prefix) in [(117, 127, 1), (118, 128, 2)] {
        let m = HubMessage::Invocation(invocation(None, "T", vec![json!("x".repeat(text))]));
        let bytes = MessagePackHubProtocol.to_bytes(&m);
        assert_eq!(bytes.len(), prefix + body);
        assert_eq!(decode(&bytes), Ok(Decoded::Message(m)));
    }
    // Non-canonical (padded) prefixes are read as .NET reads them.
    assert_eq!(
        decode(&[0x82, 0x00, 0x91, 0x06]),
        Ok(Decoded::Message(HubMessage::Ping))
    );
}

#[test]
fn bad_prefixes_and_limits() {
    let too_long = [0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert!(matches!(
        read_prefix(&too_long, usize::MAX),
        Err(ProtocolError::MessagePack(_))
    ));
    assert!(matches!(
        read_prefix(&too_long[..5], usize::MAX),
        Err(ProtocolError::MessagePack(_))
    ));
    assert!(matches!(
        read_prefix(&[0xff, 0xff, 0xff, 0xff, 0x0f], usize::MAX),
        Err(ProtocolError::MessagePack(_))
    ));
    assert!(matches!(
        read_prefix(&[0x80, 0x80, 0x80, 0x80, 0x08], usize::MAX),
        Err(ProtocolError::MessagePack(_))
    ));
    assert_eq!(read_prefix(&[], LIMIT), Ok(None));
    assert_eq!(read_prefix(&[0x80, 0x80], LIMIT), Ok(None), "incomplete");
    assert_eq!(decode(&[0x80, 0x80]), Ok(Decoded::Incomplete));
    assert!(decode(&too_long).is_err());
    // A declared length over the limit fails before the body arrives.
    let mut prefix = [0; 10];
    let size = prefix_bytes(LIMIT + 1, &mut prefix);
    assert_eq!(
        decode(&prefix[..size]),
        Err(ProtocolError::MessageTooLarge { limit: LIMIT })
    );
    // ...even before the prefix is complete, when its first bytes already exceed the limit.
    assert_eq!(
        MessagePackHubProtocol.decode(&mut BytesMut::from(&[0xff][..]), 100),
        Err(ProtocolError::MessageTooLarge { limit: 100 })
    );
    // Exactly the limit is fine.
    let mut input = BytesMut::from(&[0x02, 0x91, 0x06][..]);
    assert_eq!(
        MessagePackHubProtocol.decode(&mut input, 2),
        Ok(Decoded::Message(HubMessage::Ping))
    );
    let mut input = BytesMut::from(&[0x02, 0x91, 0x06][..]);
    assert_eq!(
        MessagePackHubProtocol.decode(&mut input, 1),
        Err(ProtocolError::MessageTooLarge { limit: 1 })
    );
    // A length of 2^31 - 1 under a huge limit waits for its body.
    assert_eq!(
        MessagePackHubProtocol.decode(
            &mut BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0x07, 0x91][..]),
            usize::MAX
        ),
        Ok(Decoded::Incomplete)
    );
    // An empty body is not a message.
    assert!(matches!(
        decode(&[0x00]),
        Err(ProtocolError::MessagePack(_))
    ));
}

#[test]
fn split_at_every_byte_then_whole() {
    let messages = [
        HubMessage::StreamItem(StreamItem {
            headers: Headers::new(),
            invocation_id: "9".into(),
            item: json!([1, "two", null, {"three": 3.5}]),
        }),
        HubMessage::Invocation(invocation(Some("1"), "T", vec![json!("x".repeat(200))])),
        HubMessage::Ping,
    ];
    let mut bytes = Vec::new();
    for m in &messages {
        MessagePackHubProtocol.encode_message(m, &mut bytes);
    }
    for cut in 0..=bytes.len() {
        let mut input = BytesMut::from(&bytes[..cut]);
        let mut decoded = Vec::new();
        let mut drain = |input: &mut BytesMut| loop {
            match MessagePackHubProtocol.decode(input, LIMIT).unwrap() {
                Decoded::Message(m) => decoded.push(m),
                Decoded::Unknown => panic!(),
                Decoded::Incomplete => break,
            }
        };
        drain(&mut input);
        input.extend_from_slice(&bytes[cut..]);
        drain(&mut input);
        assert_eq!(decoded, messages, "cut at {cut}");
        assert!(input.is_empty());
    }
}

#[test]
fn several_frames_and_unknown_types_skipped() {
    let mut input = BytesMut::from(
        &[
            0x02, 0x91, 0x06, // Ping
            0x02, 0x91, 0x63, // [99]
            0x04, 0x93, 0x0a, 0xc1, 0xff, // [10, junk]: unknown, its body is not read
            0x02, 0x91, 0xff, // [-1]
            0x02, 0x91, 0x00, // [0]
            0x0a, 0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // [u64::MAX]
            0x03, 0x92, 0x08, 0x05, // Ack 5
        ][..],
    );
    let mut decoded = Vec::new();
    loop {
        match MessagePackHubProtocol.decode(&mut input, LIMIT).unwrap() {
            Decoded::Incomplete => break,
            d => decoded.push(d),
        }
    }
    assert_eq!(
        decoded,
        [
            Decoded::Message(HubMessage::Ping),
            Decoded::Unknown,
            Decoded::Unknown,
            Decoded::Unknown,
            Decoded::Unknown,
            Decoded::Unknown,
            Decoded::Message(HubMessage::Ack { sequence_id: 5 }),
        ]
    );
}

#[test]
fn malformed_bodies_are_clear_errors() {
    let cases: &[(&[u8], &str)] = &[
        (&[0x06], "a message: expected an array, found an integer"),
        (&[0x80], "a message: expected an array, found a map"),
        (&[0x90], "a message is an empty array"),
        (
            &[0x91, 0xa1, b'1'],
            "the message type: expected an integer, found a string",
        ),
        (
            &[0x91, 0xc0],
            "the message type: expected an integer, found nil",
        ),
        (&[0x92, 0x06, 0x01], "Ping has 2 elements, expected 1"),
        (
            &[0x94, 0x01, 0x80, 0xc0, 0xa0],
            "Invocation has 4 elements, expected 5 or 6",
        ),
        (
            &[0x97, 0x01, 0x80, 0xc0, 0xa0, 0x90, 0x90, 0x90],
            "Invocation has 7 elements, expected 5 or 6",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0x05, 0x90],
            "target: expected a string, found an integer",
        ),
        (
            &[0x95, 0x01, 0x91, 0x01, 0xc0, 0xa0, 0x90],
            "headers: expected a map, found an array",
        ),
        (
            &[0x95, 0x01, 0x81, 0xa1, b'k', 0x01, 0xc0, 0xa0, 0x90],
            "a header value: expected a string, found an integer",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa0, 0x05],
            "arguments: expected an array, found an integer",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa0, 0xc0],
            "arguments: expected an array, found nil",
        ),
        (
            &[0x96, 0x01, 0x80, 0xc0, 0xa0, 0x90, 0x91, 0x01],
            "streamIds: expected a string, found an integer",
        ),
        (
            &[0x95, 0x01, 0x80, 0x01, 0xa0, 0x90],
            "invocationId: expected a string, found an integer",
        ),
        (
            &[0x95, 0x04, 0x80, 0xc0, 0xa0, 0x90],
            "invocationId: a StreamInvocation needs one",
        ),
        (
            &[0x94, 0x02, 0x80, 0xc0, 0x01],
            "invocationId: expected a string, found nil",
        ),
        (
            &[0x93, 0x01, 0x80, 0xc0],
            "Invocation has 3 elements, expected 5 or 6",
        ),
        // Truncated inside the frame.
        (&[0x95, 0x01, 0x80, 0xc0], "target: the message ends early"),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa5, b'a'],
            "target: the message ends early",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa1, b'm', 0x92, 0x01],
            "arguments: the message ends early",
        ),
        (
            &[0x92, 0x08, 0xcd, 0x01],
            "sequenceId: the message ends early",
        ),
        (&[0x92, 0x08, 0xff], "sequenceId: a negative number"),
        (
            &[0x92, 0x08, 0xc3],
            "sequenceId: expected an integer, found a boolean",
        ),
        (
            &[0x93, 0x07, 0xc0, 0x01],
            "allowReconnect: expected a boolean, found an integer",
        ),
        (
            &[0x92, 0x07, 0x01],
            "error: expected a string, found an integer",
        ),
        (
            &[0x94, 0x07, 0xc0, 0xc2, 0xc2],
            "Close has 4 elements, expected 2 or 3",
        ),
        (&[0x91, 0x06, 0x06, 0x06], "2 bytes after the message"),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa1, 0xff, 0x90],
            "target: the string is not UTF-8",
        ),
        (
            &[0x95, 0x03, 0x80, 0xa0, 0x04, 0xc0],
            "the result kind 4 is not 1, 2 or 3",
        ),
        (
            &[0x95, 0x01, 0x80, 0xc0, 0xa0, 0xdd, 0xff, 0xff, 0xff, 0xff],
            "arguments: the message ends early",
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(error(body), *expected, "{body:x?}");
    }
    // Every error reads as MessagePack's.
    assert_eq!(
        ProtocolError::MessagePack(error(&[0x90])).to_string(),
        "Error reading MessagePack: a message is an empty array"
    );
}

fn time(seconds: i64, nanoseconds: u32) -> Value {
    Value::Timestamp(Timestamp::new(seconds, nanoseconds).unwrap())
}

mod properties;
mod values;
