//! Writing messages as .NET writes them (see the parent module's docs).

use super::*;

// Writing into a `Vec` cannot fail (rmp's error type for it is `Infallible`), hence the
// ignored results below.

pub(super) fn put_array(out: &mut Vec<u8>, length: usize) {
    let _ = rmp::encode::write_array_len(out, length as u32);
}

pub(super) fn put_uint(out: &mut Vec<u8>, value: u64) {
    let _ = rmp::encode::write_uint(out, value);
}

pub(super) fn put_str(out: &mut Vec<u8>, text: &str) {
    let _ = rmp::encode::write_str(out, text);
}

pub(super) fn put_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => put_str(out, text),
        None => out.push(0xc0),
    }
}

pub(super) fn put_headers(out: &mut Vec<u8>, headers: &Headers) {
    let _ = rmp::encode::write_map_len(out, headers.len() as u32);
    for (key, value) in headers {
        put_str(out, key);
        put_str(out, value);
    }
}

/// A JSON value as MessagePack: integers in their smallest encoding, other numbers as float 64,
/// objects as maps with string keys.
pub(super) fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => put_number(out, n),
        Value::String(s) => put_str(out, s),
        Value::Array(values) => {
            put_array(out, values.len());
            for value in values {
                put_value(out, value);
            }
        }
        Value::Object(map) => {
            let _ = rmp::encode::write_map_len(out, map.len() as u32);
            for (key, value) in map {
                put_str(out, key);
                put_value(out, value);
            }
        }
    }
}

/// A hub value as MessagePack: as [`put_value`], binary as the smallest `bin`, timestamps as
/// the extension in their smallest form.
pub(super) fn put_hub_value(out: &mut Vec<u8>, value: &HubValue) {
    match value {
        HubValue::Null => out.push(0xc0),
        HubValue::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        HubValue::Number(n) => put_number(out, n),
        HubValue::String(s) => put_str(out, s),
        HubValue::Binary(bytes) => put_bin(out, bytes),
        HubValue::Timestamp(time) => {
            let _ = rmp::encode::write_ext_meta(out, time.ext_len() as u32, TIMESTAMP);
            time.to_ext(out);
        }
        HubValue::Array(values) => {
            put_array(out, values.len());
            for value in values {
                put_hub_value(out, value);
            }
        }
        HubValue::Map(map) => {
            let _ = rmp::encode::write_map_len(out, map.len() as u32);
            for (key, value) in map {
                put_str(out, key);
                put_hub_value(out, value);
            }
        }
    }
}

pub(super) fn put_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    let _ = rmp::encode::write_bin(out, bytes);
}

fn put_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(unsigned) = n.as_u64() {
        put_uint(out, unsigned);
    } else if let Some(signed) = n.as_i64() {
        let _ = rmp::encode::write_sint(out, signed);
    } else {
        let _ = rmp::encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN));
    }
}

/// An invocation's fields around its arguments, which `arguments` writes.
#[allow(clippy::too_many_arguments)]
pub(super) fn put_invocation_with(
    out: &mut Vec<u8>,
    kind: u64,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    count: usize,
    arguments: impl FnOnce(&mut Vec<u8>),
    stream_ids: &[String],
) {
    put_array(out, 6);
    put_uint(out, kind);
    put_headers(out, headers);
    put_optional_str(out, invocation_id);
    put_str(out, target);
    put_array(out, count);
    arguments(out);
    put_array(out, stream_ids.len());
    for id in stream_ids {
        put_str(out, id);
    }
}

pub(super) fn put_invocation(
    out: &mut Vec<u8>,
    kind: u64,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    arguments: &[Value],
    stream_ids: &[String],
) {
    put_invocation_with(
        out,
        kind,
        headers,
        invocation_id,
        target,
        arguments.len(),
        |out| {
            arguments
                .iter()
                .for_each(|argument| put_value(out, argument))
        },
        stream_ids,
    );
}

/// [`put_invocation`] of a non-blocking invocation whose one argument is a map of fields,
/// written as `put_value` writes the same map.
pub(super) fn put_object_invocation(
    out: &mut Vec<u8>,
    target: &str,
    argument: &[(&str, Field<'_>)],
) {
    put_array(out, 6);
    put_uint(out, 1);
    put_headers(out, &Headers::new());
    out.push(0xc0);
    put_str(out, target);
    put_array(out, 1);
    let _ = rmp::encode::write_map_len(out, argument.len() as u32);
    for (key, field) in argument {
        put_str(out, key);
        match field {
            Field::Null => out.push(0xc0),
            Field::Str(text) => put_str(out, text),
            Field::Int(n) if *n >= 0 => put_uint(out, *n as u64),
            Field::Int(n) => {
                let _ = rmp::encode::write_sint(out, *n);
            }
            Field::Value(value) => put_value(out, value),
            Field::Bytes(bytes) => put_bin(out, bytes),
        }
    }
    put_array(out, 0);
}

pub(super) fn write_body(message: &HubMessage, out: &mut Vec<u8>) {
    match message {
        HubMessage::Invocation(i) | HubMessage::StreamInvocation(i) => put_invocation_with(
            out,
            if matches!(message, HubMessage::Invocation(_)) {
                1
            } else {
                4
            },
            &i.headers,
            i.invocation_id.as_deref(),
            &i.target,
            i.arguments.len(),
            |out| {
                i.arguments
                    .iter()
                    .for_each(|argument| put_hub_value(out, argument))
            },
            &i.stream_ids,
        ),
        HubMessage::StreamItem(s) => {
            put_array(out, 4);
            put_uint(out, 2);
            put_headers(out, &s.headers);
            put_str(out, &s.invocation_id);
            put_hub_value(out, &s.item);
        }
        HubMessage::Completion(c) => {
            put_array(out, if c.outcome == Outcome::Void { 4 } else { 5 });
            put_uint(out, 3);
            put_headers(out, &c.headers);
            put_str(out, &c.invocation_id);
            match &c.outcome {
                Outcome::Error(error) => {
                    put_uint(out, 1);
                    put_str(out, error);
                }
                Outcome::Void => put_uint(out, 2),
                Outcome::Result(value) => {
                    put_uint(out, 3);
                    put_hub_value(out, value);
                }
            }
        }
        HubMessage::CancelInvocation {
            headers,
            invocation_id,
        } => {
            put_array(out, 3);
            put_uint(out, 5);
            put_headers(out, headers);
            put_str(out, invocation_id);
        }
        // Always exactly 0x91 0x06.
        HubMessage::Ping => out.extend_from_slice(&[0x91, 0x06]),
        HubMessage::Close(close) => {
            put_array(out, 3);
            put_uint(out, 7);
            put_optional_str(out, close.error.as_deref());
            out.push(if close.allow_reconnect { 0xc3 } else { 0xc2 });
        }
        HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
            put_array(out, 2);
            put_uint(
                out,
                if matches!(message, HubMessage::Ack { .. }) {
                    8
                } else {
                    9
                },
            );
            put_uint(out, *sequence_id);
        }
    }
}

/// Append a body written by `write` to `out` behind its length prefix. The body is written in
/// place after a one-byte prefix; a longer prefix moves it up once (no second buffer).
pub(super) fn framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(0);
    write(out);
    let length = out.len() - start - 1;
    debug_assert!(length as u64 <= MAX_LENGTH, "a message over 2 GiB");
    let mut prefix = [0; 10];
    let size = prefix_bytes(length, &mut prefix);
    if size > 1 {
        let end = out.len();
        out.resize(end + size - 1, 0);
        out.copy_within(start + 1..end, start + size);
    }
    out[start..start + size].copy_from_slice(&prefix[..size]);
}
