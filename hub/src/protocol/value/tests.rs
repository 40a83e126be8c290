use super::*;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

fn time(seconds: i64, nanoseconds: u32) -> Timestamp {
    Timestamp::new(seconds, nanoseconds).unwrap()
}

fn binary(bytes: &[u8]) -> HubValue {
    HubValue::Binary(Bytes::copy_from_slice(bytes))
}

#[test]
fn timestamps_are_written_as_dotnet_writes_them() {
    for (seconds, nanoseconds, text) in [
        (0, 0, "1970-01-01T00:00:00Z"),
        (946_684_800, 0, "2000-01-01T00:00:00Z"),
        (1_700_000_000, 123_000_000, "2023-11-14T22:13:20.123Z"),
        (1_700_000_000, 123_456_700, "2023-11-14T22:13:20.1234567Z"),
        // Finer than .NET's 100 ns ticks: kept, not cut.
        (1_700_000_000, 123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (-1, 500_000_000, "1969-12-31T23:59:59.5Z"),
        (951_782_400, 0, "2000-02-29T00:00:00Z"),
        (-62_135_596_800, 0, "0001-01-01T00:00:00Z"),
        (253_402_300_799, 999_999_900, "9999-12-31T23:59:59.9999999Z"),
        // Outside 0000-9999: ISO 8601's expanded years, as JavaScript writes them.
        (253_402_300_800, 0, "+010000-01-01T00:00:00Z"),
        (-62_167_219_201, 0, "-000001-12-31T23:59:59Z"),
    ] {
        let timestamp = time(seconds, nanoseconds);
        assert_eq!(timestamp.to_string(), text);
        assert_eq!(HubValue::Timestamp(timestamp).to_json(), json!(text));
        if !text.starts_with(['+', '-']) {
            assert_eq!(Timestamp::parse(text), Some(timestamp), "{text}");
        }
    }
    // The ends of the range do not overflow.
    assert!(time(i64::MIN, 0).to_string().ends_with('Z'));
    assert!(time(i64::MAX, 999_999_999)
        .to_string()
        .ends_with(".999999999Z"));
    assert_eq!(Timestamp::new(0, 1_000_000_000), None);
    assert_eq!(
        Timestamp::parse("2023-11-14T23:13:20.5+01:00"),
        Some(time(1_700_000_000, 500_000_000))
    );
}

#[test]
fn the_json_form_is_base64_and_iso_text() {
    let value = HubValue::Array(vec![
        binary(&[1, 2, 3]),
        HubValue::Timestamp(time(946_684_800, 0)),
        HubValue::from(json!({"n": 1, "s": "x", "a": [true, null, 1.5]})),
    ]);
    let expected =
        json!(["AQID", "2000-01-01T00:00:00Z", {"n": 1, "s": "x", "a": [true, null, 1.5]}]);
    assert_eq!(value.to_json(), expected);
    assert_eq!(serde_json::Value::from(value.clone()), expected);
    // Serialize into a human-readable format writes the same.
    assert_eq!(serde_json::to_value(&value).unwrap(), expected);
    assert_eq!(value.to_string(), expected.to_string());
    // JSON values convert both ways unchanged.
    let plain = json!({"b": [1, -2, u64::MAX, 2.5, "t", null, {}], "a": false});
    assert_eq!(
        serde_json::Value::from(HubValue::from(plain.clone())),
        plain
    );
    // NaN has no JSON form.
    assert_eq!(HubValue::from(f64::NAN), HubValue::Null);
}

#[test]
fn values_serialise_into_themselves() {
    let value = HubValue::Array(vec![
        binary(&[0, 255]),
        HubValue::Timestamp(time(-5, 7)),
        HubValue::Timestamp(time(i64::MAX, 999_999_999)),
        HubValue::from(json!({"k": [1, 2]})),
        HubValue::Map([("bin".to_owned(), binary(&[9]))].into_iter().collect()),
    ]);
    assert_eq!(HubValue::from_serialize(&value), Ok(value.clone()));
    // And deserialise into themselves, binary and timestamps included, however nested.
    assert_eq!(
        value.clone().deserialize_into::<HubValue>(),
        Ok(value.clone())
    );
    let values: Vec<HubValue> = value.clone().deserialize_into().unwrap();
    assert_eq!(HubValue::Array(values), value);
    let maybe: Option<HubValue> = binary(&[1]).deserialize_into().unwrap();
    assert_eq!(maybe, Some(binary(&[1])));
    // From JSON text, a HubValue has no binary: base64 stays a string.
    let read: HubValue = serde_json::from_str(r#"["AQID", {"a": 1}]"#).unwrap();
    assert_eq!(read, HubValue::from(json!(["AQID", {"a": 1}])));
}

#[test]
fn results_become_binary_and_time_as_dotnet_writes_them() {
    let from = |value: &dyn erased::Value| value.hub();
    assert_eq!(from(&vec![1u8, 2]), binary(&[1, 2]));
    assert_eq!(from(&Bytes::from_static(b"ab")), binary(b"ab"));
    assert_eq!(from(&serde_bytes::ByteBuf::from(vec![3])), binary(&[3]));
    assert_eq!(from(&time(1, 2)), HubValue::Timestamp(time(1, 2)));
    // Not byte arrays: an empty Vec<u8> (nothing tells it from an empty list), wider
    // integers, fixed-size arrays and JSON arrays of numbers.
    assert_eq!(from(&Vec::<u8>::new()), HubValue::Array(vec![]));
    assert_eq!(from(&vec![1u16, 2]), HubValue::from(json!([1, 2])));
    assert_eq!(from(&[1u8, 2]), HubValue::from(json!([1, 2])));
    assert_eq!(from(&json!([1, 2])), HubValue::from(json!([1, 2])));
    // chrono writes its own RFC 3339 text.
    let date = DateTime::<Utc>::from_timestamp(0, 0).unwrap();
    assert_eq!(from(&date), HubValue::from("1970-01-01T00:00:00Z"));
    #[derive(Serialize)]
    struct Shape {
        data: Vec<u8>,
        at: Timestamp,
        kind: Kind,
        map: BTreeMap<i32, bool>,
    }
    let shape = Shape {
        data: vec![7],
        at: time(3, 0),
        kind: Kind::Pair(1, 2),
        map: [(5, true)].into_iter().collect(),
    };
    let mut expected = HubMap::new();
    expected.insert("data".into(), binary(&[7]));
    expected.insert("at".into(), HubValue::Timestamp(time(3, 0)));
    expected.insert("kind".into(), HubValue::from(json!({"Pair": [1, 2]})));
    expected.insert("map".into(), HubValue::from(json!({"5": true})));
    assert_eq!(from(&shape), HubValue::Map(expected));
    // A JSON value serialises as its conversion does.
    let plain = json!({"a": [1, -1, 1.5, "x", null, u64::MAX]});
    assert_eq!(from(&plain), HubValue::from(plain));
}

/// `&dyn Serialize` for the table above.
mod erased {
    pub trait Value {
        fn hub(&self) -> super::HubValue;
    }
    impl<T: serde::Serialize> Value for T {
        fn hub(&self) -> super::HubValue {
            super::HubValue::from_serialize(self).unwrap()
        }
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    Unit,
    Wrapped(String),
    Pair(i32, i32),
    Shaped { x: i8 },
}

#[test]
fn typed_arguments_bind_as_from_json_plus_binary_and_time() {
    fn get<T: serde::de::DeserializeOwned>(value: HubValue) -> Result<T, ValueError> {
        value.deserialize_into()
    }
    // Bytes from binary, and from base64 text as .NET's JSON reads a `byte[]`.
    for value in [binary(&[1, 2, 3]), HubValue::from("AQID")] {
        assert_eq!(get::<Vec<u8>>(value.clone()), Ok(vec![1, 2, 3]));
        assert_eq!(
            get::<Bytes>(value.clone()),
            Ok(Bytes::from_static(&[1, 2, 3]))
        );
        assert_eq!(
            get::<serde_bytes::ByteBuf>(value.clone()),
            Ok(serde_bytes::ByteBuf::from(vec![1, 2, 3]))
        );
    }
    // Arrays of numbers still bind, as from JSON.
    assert_eq!(
        get::<Vec<u8>>(HubValue::from(json!([1, 2]))),
        Ok(vec![1, 2])
    );
    assert_eq!(
        get::<Bytes>(HubValue::from(json!([1, 2]))),
        Ok(Bytes::from_static(&[1, 2]))
    );
    assert!(get::<Bytes>(HubValue::from("not base64!")).is_err());
    assert!(get::<Vec<u8>>(HubValue::from(json!([256]))).is_err());
    // Time from a timestamp or ISO text.
    let at = time(1_700_000_000, 123_456_789);
    let expected = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).unwrap();
    for value in [
        HubValue::Timestamp(at),
        HubValue::from("2023-11-14T22:13:20.123456789Z"),
    ] {
        assert_eq!(get::<DateTime<Utc>>(value.clone()), Ok(expected));
        assert_eq!(
            get::<DateTime<FixedOffset>>(value.clone()),
            Ok(expected.fixed_offset())
        );
        assert_eq!(get::<Timestamp>(value.clone()), Ok(at));
    }
    assert!(get::<DateTime<Utc>>(HubValue::from("yesterday")).is_err());
    assert_eq!(DateTime::<Utc>::try_from(at), Ok(expected));
    assert_eq!(Timestamp::from(expected), at);
    // A JSON value parameter gets the JSON form.
    assert_eq!(
        get::<serde_json::Value>(HubValue::Array(vec![
            binary(&[1]),
            HubValue::Timestamp(time(0, 0))
        ])),
        Ok(json!(["AQ==", "1970-01-01T00:00:00Z"]))
    );
    // Everything else as serde_json::Value binds it.
    assert_eq!(get::<u8>(HubValue::from(255)), Ok(255));
    assert!(get::<u8>(HubValue::from(256)).is_err());
    assert_eq!(get::<i8>(HubValue::from(-128)), Ok(-128));
    assert_eq!(get::<i16>(HubValue::from(-300)), Ok(-300));
    assert_eq!(get::<u32>(HubValue::from(u32::MAX)), Ok(u32::MAX));
    assert_eq!(get::<i64>(HubValue::from(i64::MIN)), Ok(i64::MIN));
    assert_eq!(get::<u64>(HubValue::from(u64::MAX)), Ok(u64::MAX));
    assert!(get::<i64>(HubValue::from(u64::MAX)).is_err());
    assert_eq!(get::<f32>(HubValue::from(1.5)), Ok(1.5));
    assert_eq!(get::<f64>(HubValue::from(2)), Ok(2.0));
    assert_eq!(get::<bool>(HubValue::from(true)), Ok(true));
    assert_eq!(get::<char>(HubValue::from("é")), Ok('é'));
    assert_eq!(get::<String>(HubValue::from("s")), Ok("s".into()));
    assert!(get::<String>(HubValue::from(1)).is_err());
    assert_eq!(get::<Option<i32>>(HubValue::Null), Ok(None));
    assert_eq!(get::<Option<i32>>(HubValue::from(3)), Ok(Some(3)));
    assert_eq!(get::<()>(HubValue::Null), Ok(()));
    assert_eq!(
        get::<(i32, String)>(HubValue::from(json!([1, "a"]))),
        Ok((1, "a".into()))
    );
    assert!(get::<(i32, String)>(HubValue::from(json!([1, "a", 2]))).is_err());
    assert_eq!(
        get::<HashMap<String, Vec<i32>>>(HubValue::from(json!({"a": [1]}))),
        Ok([("a".to_owned(), vec![1])].into_iter().collect())
    );
    assert_eq!(
        get::<BTreeMap<u32, bool>>(HubValue::from(json!({"7": true}))),
        Ok([(7, true)].into_iter().collect())
    );
    for (value, kind) in [
        (json!("Unit"), Kind::Unit),
        (json!({"Wrapped": "w"}), Kind::Wrapped("w".into())),
        (json!({"Pair": [1, 2]}), Kind::Pair(1, 2)),
        (json!({"Shaped": {"x": -1}}), Kind::Shaped { x: -1 }),
    ] {
        assert_eq!(get::<Kind>(HubValue::from(value)), Ok(kind));
    }
    assert!(get::<Kind>(HubValue::from("Nope")).is_err());
    assert!(get::<Kind>(HubValue::from(json!({"Unit": 1, "Pair": 2}))).is_err());
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Upload {
        file_name: String,
        content: Bytes,
        taken_at: DateTime<Utc>,
        #[serde(default)]
        tags: Vec<String>,
        extra: Option<HubValue>,
    }
    let mut map = HubMap::new();
    map.insert("fileName".into(), "a.png".into());
    map.insert("content".into(), binary(&[0x89, 0x50]));
    map.insert("takenAt".into(), HubValue::Timestamp(time(0, 0)));
    map.insert("extra".into(), binary(&[1]));
    assert_eq!(
        get::<Upload>(HubValue::Map(map)),
        Ok(Upload {
            file_name: "a.png".into(),
            content: Bytes::from_static(&[0x89, 0x50]),
            taken_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            tags: vec![],
            extra: Some(binary(&[1])),
        })
    );
}
