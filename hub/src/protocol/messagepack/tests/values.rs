//! Values: every MessagePack form read, and written in its smallest encoding.

use super::*;

#[test]
fn reading_values() {
    let ok =
        |bytes: &[u8], expected: Value| assert_eq!(argument(bytes), Ok(expected), "{bytes:x?}");
    ok(&[0xc0], Value::Null);
    ok(&[0xc3], json!(true));
    ok(&[0xc2], json!(false));
    ok(&[0x7f], json!(127));
    ok(&[0xe0], json!(-32));
    ok(&[0xcc, 0xff], json!(255));
    ok(&[0xcd, 0xff, 0xff], json!(65535));
    ok(&[0xce, 0xff, 0xff, 0xff, 0xff], json!(4_294_967_295u64));
    ok(
        &[0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        json!(u64::MAX),
    );
    ok(&[0xd0, 0x80], json!(-128));
    ok(&[0xd0, 0x05], json!(5));
    ok(&[0xd1, 0x80, 0x00], json!(-32768));
    ok(&[0xd2, 0x80, 0x00, 0x00, 0x00], json!(i32::MIN));
    ok(&[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], json!(i64::MIN));
    ok(&[0xd3, 0, 0, 0, 0, 0, 0, 0, 7], json!(7));
    ok(&[0xca, 0x3f, 0xc0, 0x00, 0x00], json!(1.5));
    ok(&[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], json!(1.5));
    ok(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], Value::Null); // NaN
    ok(&[0xca, 0x7f, 0x80, 0x00, 0x00], Value::Null); // infinity
    ok(&[0xa2, b'h', b'i'], json!("hi"));
    ok(&[0xd9, 0x02, b'h', b'i'], json!("hi"));
    ok(&[0xda, 0x00, 0x02, b'h', b'i'], json!("hi"));
    ok(&[0xdb, 0x00, 0x00, 0x00, 0x02, b'h', b'i'], json!("hi"));
    ok(&[0x92, 0x01, 0xa1, b'a'], json!([1, "a"]));
    ok(&[0xdc, 0x00, 0x01, 0x90], json!([[]]));
    ok(&[0xdd, 0x00, 0x00, 0x00, 0x00], json!([]));
    ok(
        &[0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0x80],
        json!({"a": 1, "b": {}}),
    );
    ok(&[0xde, 0x00, 0x01, 0xa1, b'a', 0xc0], json!({"a": null}));
    ok(&[0xdf, 0x00, 0x00, 0x00, 0x00], json!({}));
    // Later duplicate keys win.
    ok(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'a', 0x02], json!({"a": 2}));
}

/// A timestamp value.

#[test]
fn binary_timestamps_and_keys() {
    // bin 8/16/32: binary.
    let binary = |bytes: &[u8]| Value::Binary(Bytes::copy_from_slice(bytes));
    assert_eq!(
        argument(&[0xc4, 0x03, 0x01, 0x02, 0xff]),
        Ok(binary(&[1, 2, 255]))
    );
    assert_eq!(argument(&[0xc5, 0x00, 0x00]), Ok(binary(&[])));
    assert_eq!(
        argument(&[0xc6, 0x00, 0x00, 0x00, 0x01, 0x07]),
        Ok(binary(&[7]))
    );
    assert_eq!(
        argument(&[0xc4, 0x05, 0x01]),
        Err("arguments: the message ends early".into())
    );
    // Integer map keys become decimal text; other keys are errors.
    assert_eq!(
        argument(&[0x82, 0x01, 0xa1, b'a', 0xff, 0xc3]),
        Ok(json!({"1": "a", "-1": true}))
    );
    assert_eq!(
        argument(&[0x81, 0xc0, 0x01]),
        Err("arguments: expected a map key that is a string or an integer, found nil".into())
    );
    assert!(argument(&[0x81, 0x90, 0x01]).is_err());
    assert!(argument(&[0x81, 0xc4, 0x00, 0x01]).is_err());
    // Timestamps (extension −1) in their three forms.
    let timestamp = |data: &[u8]| {
        let mut bytes = match data.len() {
            4 => vec![0xd6, 0xff],
            8 => vec![0xd7, 0xff],
            n => vec![0xc7, n as u8, 0xff],
        };
        bytes.extend_from_slice(data);
        argument(&bytes)
    };
    assert_eq!(timestamp(&[0, 0, 0, 0]), Ok(time(0, 0)));
    assert_eq!(
        timestamp(&u32::MAX.to_be_bytes()),
        Ok(time(u32::MAX.into(), 0))
    );
    // 64-bit: 30 bits of nanoseconds over 34 bits of seconds.
    let ts64 =
        |seconds: u64, nanoseconds: u64| timestamp(&((nanoseconds << 34) | seconds).to_be_bytes());
    assert_eq!(
        ts64(1_700_000_000, 123_456_789),
        Ok(time(1_700_000_000, 123_456_789))
    );
    assert_eq!(ts64((1 << 34) - 1, 0), Ok(time((1 << 34) - 1, 0)));
    assert!(ts64(0, 1_000_000_000).is_err());
    // 96-bit: 32 bits of nanoseconds, then 64 signed bits of seconds: the whole range.
    let ts96 = |seconds: i64, nanoseconds: u32| {
        let mut data = nanoseconds.to_be_bytes().to_vec();
        data.extend_from_slice(&seconds.to_be_bytes());
        timestamp(&data)
    };
    for (seconds, nanoseconds) in [
        (-1, 500_000_000),
        (-62_167_219_201, 0),
        (i64::MIN, 0),
        (i64::MAX, 999_999_999),
    ] {
        assert_eq!(ts96(seconds, nanoseconds), Ok(time(seconds, nanoseconds)));
    }
    assert!(ts96(0, 1_000_000_000).is_err());
    // What @msgpack/msgpack (the JS client's codec) writes for
    // [new Date(1700000000123), new Date(1700000000000), new Uint8Array([1, 2, 255])].
    let js = [
        0x93, 0xd7, 0xff, 0x1d, 0x53, 0x53, 0x00, 0x65, 0x53, 0xf1, 0x00, 0xd6, 0xff, 0x65, 0x53,
        0xf1, 0x00, 0xc4, 0x03, 0x01, 0x02, 0xff,
    ];
    let expected = Value::Array(vec![
        time(1_700_000_000, 123_000_000),
        time(1_700_000_000, 0),
        binary(&[1, 2, 255]),
    ]);
    assert_eq!(argument(&js), Ok(expected.clone()));
    // And it is written back byte for byte, as .NET writes it.
    assert_eq!(written(expected), js);
    // A timestamp of another size, and other extension types, are errors.
    assert!(timestamp(&[0; 5]).is_err());
    assert_eq!(
        argument(&[0xd4, 0x01, 0x00]),
        Err("arguments: the extension type 1 is not supported".into())
    );
    assert!(argument(&[0xc8, 0x00, 0x01, 0x05]).is_err());
    assert!(argument(&[0xc9, 0x00, 0x00, 0x00, 0x00, 0x05]).is_err());
    assert!(
        argument(&[0xd8, 0x05, 0x00]).is_err(),
        "fixext 16 cut short"
    );
    // The reserved byte.
    assert_eq!(
        argument(&[0xc1]),
        Err("arguments: expected a value, found the reserved byte 0xc1".into())
    );
}

#[test]
fn nesting_is_limited() {
    let nested = |depth: usize| {
        let mut bytes = vec![0x91; depth];
        bytes.push(0x01);
        argument(&bytes)
    };
    assert!(nested(MAX_DEPTH).is_ok());
    assert_eq!(
        nested(MAX_DEPTH + 1),
        Err("arguments: nested deeper than 128".into())
    );
    // Deep enough to overflow the stack without the limit, within the message size.
    assert!(nested(30_000).is_err());
    let mut maps = [0x81, 0xa0].repeat(MAX_DEPTH + 1);
    maps.push(0xc0);
    assert!(argument(&maps).is_err());
}

#[test]
fn writing_values_in_their_smallest_encoding() {
    let cases: Vec<(Value, &[u8])> = vec![
        (json!(null), &[0xc0]),
        (json!(true), &[0xc3]),
        (json!(false), &[0xc2]),
        (json!(0), &[0x00]),
        (json!(127), &[0x7f]),
        (json!(128), &[0xcc, 0x80]),
        (json!(255), &[0xcc, 0xff]),
        (json!(256), &[0xcd, 0x01, 0x00]),
        (json!(65536), &[0xce, 0x00, 0x01, 0x00, 0x00]),
        (json!(1u64 << 32), &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
        (json!(-1), &[0xff]),
        (json!(-32), &[0xe0]),
        (json!(-33), &[0xd0, 0xdf]),
        (json!(-129), &[0xd1, 0xff, 0x7f]),
        (json!(-32769), &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
        (json!(i64::MIN), &[0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        (json!(1.5), &[0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
        (json!(""), &[0xa0]),
        (json!("a".repeat(31)), &[0xbf]),
        (json!("a".repeat(32)), &[0xd9, 0x20]),
        (json!("a".repeat(256)), &[0xda, 0x01, 0x00]),
        (json!([]), &[0x90]),
        (json!([1, [2]]), &[0x92, 0x01, 0x91, 0x02]),
        (json!({}), &[0x80]),
        (
            json!({"a": {"b": null}}),
            &[0x81, 0xa1, b'a', 0x81, 0xa1, b'b', 0xc0],
        ),
    ];
    for (value, start) in cases {
        let bytes = written(value.clone());
        assert!(bytes.starts_with(start), "{value}: {bytes:x?}");
        // And they read back.
        assert_eq!(argument(&bytes), Ok(value));
    }
    // Binary as the smallest bin, timestamps in the smallest form .NET chooses.
    let cases: Vec<(Value, Vec<u8>)> = vec![
        (Value::Binary(Bytes::new()), vec![0xc4, 0x00]),
        (Value::Binary(vec![7; 255].into()), vec![0xc4, 0xff]),
        (Value::Binary(vec![7; 256].into()), vec![0xc5, 0x01, 0x00]),
        (Value::Binary(vec![7; 65536].into()), vec![0xc6, 0, 1, 0, 0]),
        (time(0, 0), vec![0xd6, 0xff, 0, 0, 0, 0]),
        (
            time(u32::MAX.into(), 0),
            vec![0xd6, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (time(1 << 32, 0), vec![0xd7, 0xff, 0, 0, 0, 1, 0, 0, 0, 0]),
        (time(0, 1), vec![0xd7, 0xff, 0, 0, 0, 4, 0, 0, 0, 0]),
        (
            time(1 << 34, 0),
            vec![0xc7, 12, 0xff, 0, 0, 0, 0, 0, 0, 0, 4],
        ),
        (time(-1, 0), vec![0xc7, 12, 0xff, 0, 0, 0, 0, 0xff, 0xff]),
    ];
    for (value, start) in cases {
        let bytes = written(value.clone());
        assert!(bytes.starts_with(&start), "{:x?}", &bytes[..start.len()]);
        // bin 32 is larger than the tests' read limit.
        if bytes.len() < LIMIT {
            assert_eq!(argument(&bytes), Ok(value));
        }
    }
    let array16: Vec<Value> = (0..16).map(Value::from).collect();
    assert_eq!(written(json!(array16))[..3], [0xdc, 0x00, 0x10]);
}
