use super::*;

/// The tests build hub values with JSON literals.
type Value = HubValue;
macro_rules! json {
    ($($value:tt)+) => {
        HubValue::from(serde_json::json!($($value)+))
    };
}

const LIMIT: usize = 32 * 1024;

fn decode_all(input: &[u8]) -> Result<Vec<Decoded>, ProtocolError> {
    let mut buffer = BytesMut::from(input);
    let mut out = Vec::new();
    loop {
        match JsonHubProtocol.decode(&mut buffer, LIMIT)? {
            Decoded::Incomplete => return Ok(out),
            decoded => out.push(decoded),
        }
    }
}

fn one(input: &str) -> HubMessage {
    match decode_all(format!("{input}\x1e").as_bytes()).unwrap().pop() {
        Some(Decoded::Message(message)) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn encoded(message: &HubMessage) -> String {
    String::from_utf8(JsonHubProtocol.to_bytes(message).to_vec()).unwrap()
}

#[test]
fn type_may_come_last_as_the_js_client_writes_it() {
    let message = one(r#"{"target":"Send","arguments":[1],"invocationId":"0","type":1}"#);
    assert_eq!(
        message,
        HubMessage::Invocation(Invocation {
            headers: Headers::new(),
            invocation_id: Some("0".into()),
            target: "Send".into(),
            arguments: vec![json!(1)],
            stream_ids: vec![],
        })
    );
}

#[test]
fn a_null_invocation_id_is_a_non_blocking_invocation() {
    let HubMessage::Invocation(invocation) =
        one(r#"{"type":1,"invocationId":null,"target":"a","arguments":[]}"#)
    else {
        panic!()
    };
    assert_eq!(invocation.invocation_id, None);
}

#[test]
fn headers_stream_ids_and_unknown_keys() {
    let HubMessage::Invocation(invocation) = one(
        r#"{"type":1,"target":"a","arguments":[],"streamIds":["1"],"headers":{"traceparent":"x"},"extra":{"deep":[1]}}"#,
    ) else {
        panic!()
    };
    assert_eq!(invocation.stream_ids, ["1"]);
    assert_eq!(
        invocation.headers.get("traceparent").map(String::as_str),
        Some("x")
    );
}

#[test]
fn item_null_is_a_value_and_a_missing_item_is_an_error() {
    assert_eq!(
        one(r#"{"type":2,"invocationId":"1","item":null}"#),
        HubMessage::StreamItem(StreamItem {
            headers: Headers::new(),
            invocation_id: "1".into(),
            item: Value::Null,
        })
    );
    assert_eq!(
        decode_all(b"{\"type\":2,\"invocationId\":\"1\"}\x1e"),
        Err(ProtocolError::MissingProperty("item"))
    );
}

#[test]
fn completion_outcomes() {
    let outcome = |text: &str| match one(text) {
        HubMessage::Completion(c) => c.outcome,
        other => panic!("{other:?}"),
    };
    assert_eq!(outcome(r#"{"type":3,"invocationId":"1"}"#), Outcome::Void);
    assert_eq!(
        outcome(r#"{"type":3,"invocationId":"1","result":null}"#),
        Outcome::Result(Value::Null)
    );
    assert_eq!(
        outcome(r#"{"type":3,"invocationId":"1","error":"e"}"#),
        Outcome::Error("e".into())
    );
    assert_eq!(
        decode_all(b"{\"type\":3,\"invocationId\":\"1\",\"error\":\"e\",\"result\":1}\x1e"),
        Err(ProtocolError::ErrorAndResult)
    );
}

#[test]
fn every_other_type_is_read() {
    assert_eq!(one(r#"{"type":6}"#), HubMessage::Ping);
    assert_eq!(
        one(r#"{"type":7,"error":"bye","allowReconnect":true}"#),
        HubMessage::Close(Close {
            error: Some("bye".into()),
            allow_reconnect: true
        })
    );
    assert_eq!(one(r#"{"type":7}"#), HubMessage::Close(Close::default()));
    assert_eq!(
        one(r#"{"type":5,"invocationId":"3"}"#),
        HubMessage::CancelInvocation {
            headers: Headers::new(),
            invocation_id: "3".into()
        }
    );
    assert_eq!(
        one(r#"{"type":8,"sequenceId":4}"#),
        HubMessage::Ack { sequence_id: 4 }
    );
    assert_eq!(
        one(r#"{"type":9,"sequenceId":1}"#),
        HubMessage::Sequence { sequence_id: 1 }
    );
    assert!(matches!(
        one(r#"{"type":4,"invocationId":"2","target":"S","arguments":[]}"#),
        HubMessage::StreamInvocation(_)
    ));
}

#[test]
fn unknown_types_are_skipped_not_fatal() {
    let decoded = decode_all(b"{\"type\":99,\"x\":1}\x1e{\"type\":6}\x1e").unwrap();
    assert_eq!(
        decoded,
        vec![Decoded::Unknown, Decoded::Message(HubMessage::Ping)]
    );
}

#[test]
fn many_messages_in_one_chunk_and_one_message_over_two_chunks() {
    let decoded = decode_all(b"{\"type\":6}\x1e{\"type\":6}\x1e{\"type\":6}\x1e").unwrap();
    assert_eq!(decoded.len(), 3);

    let mut buffer = BytesMut::from(&b"{\"type\":"[..]);
    assert_eq!(
        JsonHubProtocol.decode(&mut buffer, LIMIT),
        Ok(Decoded::Incomplete)
    );
    buffer.extend_from_slice(b"6}\x1e");
    assert_eq!(
        JsonHubProtocol.decode(&mut buffer, LIMIT),
        Ok(Decoded::Message(HubMessage::Ping))
    );
    assert!(buffer.is_empty());
}

#[test]
fn malformed_input_is_a_clear_error() {
    let error = |input: &[u8]| decode_all(input).unwrap_err();
    assert!(matches!(error(b"{\"type\":1,\x1e"), ProtocolError::Json(_)));
    assert_eq!(error(b"[1,2]\x1e"), ProtocolError::NotAnObject);
    assert_eq!(error(b"42\x1e"), ProtocolError::NotAnObject);
    assert_eq!(error(b"{}\x1e"), ProtocolError::MissingProperty("type"));
    assert_eq!(
        error(b"{\"type\":1,\"arguments\":[]}\x1e"),
        ProtocolError::MissingProperty("target")
    );
    assert_eq!(
        error(b"{\"type\":1,\"target\":\"a\"}\x1e"),
        ProtocolError::MissingProperty("arguments")
    );
    assert_eq!(
        error(b"{\"type\":4,\"target\":\"a\",\"arguments\":[]}\x1e"),
        ProtocolError::MissingProperty("invocationId")
    );
    assert!(matches!(
        error(b"{\"type\":\"1\"}\x1e"),
        ProtocolError::Json(_)
    ));
    assert!(matches!(
        error(b"{\"type\":1,\"target\":\"a\",\"arguments\":[],\"headers\":{\"a\":1}}\x1e"),
        ProtocolError::Json(_)
    ));
    assert_eq!(
        error(b"{\"type\":6,\"x\":\"\xff\"}\x1e"),
        ProtocolError::InvalidUtf8
    );
}

#[test]
fn oversize_messages_fail_before_they_are_complete() {
    let mut buffer = BytesMut::from(&[b' '; 100][..]);
    assert_eq!(
        JsonHubProtocol.decode(&mut buffer, 64),
        Err(ProtocolError::MessageTooLarge { limit: 64 })
    );
    let mut exact = BytesMut::from(&b"{\"type\":6}    \x1e"[..]);
    assert!(matches!(
        JsonHubProtocol.decode(&mut exact, 14),
        Ok(Decoded::Message(_))
    ));
}

#[test]
fn writing_omits_absent_optionals_and_keeps_item_null() {
    assert_eq!(
        encoded(&HubMessage::Completion(Completion::result(
            "1".into(),
            Value::Null
        ))),
        "{\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::Completion(Completion {
            headers: Headers::new(),
            invocation_id: "1".into(),
            outcome: Outcome::Void
        })),
        "{\"type\":3,\"invocationId\":\"1\"}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::StreamItem(StreamItem {
            headers: Headers::new(),
            invocation_id: "7".into(),
            item: Value::Null
        })),
        "{\"type\":2,\"invocationId\":\"7\",\"item\":null}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::Invocation(Invocation {
            headers: Headers::new(),
            invocation_id: None,
            target: "message".into(),
            arguments: vec![json!({"a": "\u{1e}"})],
            stream_ids: vec![],
        })),
        "{\"type\":1,\"target\":\"message\",\"arguments\":[{\"a\":\"\\u001e\"}]}\x1e"
    );
    assert_eq!(encoded(&HubMessage::Ping), "{\"type\":6}\x1e");
    assert_eq!(
        encoded(&HubMessage::Close(Close::default())),
        "{\"type\":7}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::Close(Close {
            error: Some("e".into()),
            allow_reconnect: true
        })),
        "{\"type\":7,\"error\":\"e\",\"allowReconnect\":true}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::Ack { sequence_id: 3 }),
        "{\"type\":8,\"sequenceId\":3}\x1e"
    );
    assert_eq!(
        encoded(&HubMessage::Sequence { sequence_id: 3 }),
        "{\"type\":9,\"sequenceId\":3}\x1e"
    );
}

#[test]
fn every_message_round_trips() {
    let mut headers = Headers::new();
    headers.insert("k".into(), "v".into());
    let messages = vec![
        HubMessage::Invocation(Invocation {
            headers: headers.clone(),
            invocation_id: Some("1".into()),
            target: "T".into(),
            arguments: vec![json!(1), json!("two"), json!({"three": [3]}), Value::Null],
            stream_ids: vec!["2".into()],
        }),
        HubMessage::StreamInvocation(Invocation {
            headers: Headers::new(),
            invocation_id: Some("3".into()),
            target: "S".into(),
            arguments: vec![],
            stream_ids: vec![],
        }),
        HubMessage::StreamItem(StreamItem {
            headers: headers.clone(),
            invocation_id: "3".into(),
            item: json!([1]),
        }),
        HubMessage::Completion(Completion::error("3".into(), "bad".into())),
        HubMessage::CancelInvocation {
            headers,
            invocation_id: "3".into(),
        },
        HubMessage::Ping,
        HubMessage::Close(Close {
            error: None,
            allow_reconnect: true,
        }),
        HubMessage::Ack {
            sequence_id: u64::MAX,
        },
        HubMessage::Sequence { sequence_id: 1 },
    ];
    for message in messages {
        assert_eq!(one(encoded(&message).trim_end_matches('\u{1e}')), message);
    }
}

#[test]
fn the_broadcast_encoder_writes_a_non_blocking_invocation() {
    let frame = crate::encoder::fan_out(JsonHubProtocol, "message", vec![json!({"x": 1})]);
    assert_eq!(
        &frame[..],
        b"{\"type\":1,\"target\":\"message\",\"arguments\":[{\"x\":1}]}\x1e"
    );
}

/// Found by the `signalr_json` fuzz target: without serde_json's `float_roundtrip`, a long
/// number was parsed to a neighbouring float, so a relayed value could change in its last digit
/// (1.1844674407370957e20 came back as 1.1844674407370955e20 after one more pass).
#[test]
fn long_numbers_survive_decode_encode_decode_exactly() {
    let input = r#"{"type":1,"target":"Send","arguments":[{"a":[118446744073709551616]},1.7976931348623157e308,0.30000000000000004,5e-324]}"#;
    let first = one(input);
    let second = one(&encoded(&first)[..encoded(&first).len() - 1]);
    assert_eq!(first, second);
    let HubMessage::Invocation(invocation) = first else {
        panic!("an invocation");
    };
    let exact: f64 = "118446744073709551616".parse().unwrap();
    assert_eq!(invocation.arguments[0]["a"][0].as_f64(), Some(exact));
    assert_eq!(invocation.arguments[3].as_f64(), Some(5e-324));
}
