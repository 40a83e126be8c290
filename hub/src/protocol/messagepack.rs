//! The `messagepack` hub protocol: each message is a varint length prefix and a MessagePack
//! array whose first element is the message type.
//!
//! Read leniently, as .NET reads it (Invocation and StreamInvocation with 5 or 6 elements,
//! Close with 2 or 3, an empty invocation id taken as none, integers of any width, non-canonical
//! length prefixes); written as .NET writes it (Invocation with 6 elements and a nil id when
//! there is none, Close with 3, Completion kinds 1/2/3, integers in their smallest encoding,
//! floats as float 64).
//!
//! Arguments, stream items and results are JSON values. MessagePack values with no JSON form
//! are mapped so that a hub method sees what a JSON client would have sent:
//! - `bin` becomes an array of byte numbers (`[1, 2, 255]`), which binds to `Vec<u8>`;
//! - the timestamp extension (type −1, sent by the JS client for a `Date`) becomes an
//!   RFC 3339 UTC string with at least millisecond digits, as JavaScript's `toISOString()`
//!   writes it (`"2023-11-14T22:13:20.000Z"`); years outside 0000–9999 are an error;
//! - map keys that are integers become their decimal text (as `System.Text.Json` writes a
//!   `Dictionary<int, T>`); any other non-string key is an error;
//! - NaN and infinities become `null` (as `JSON.stringify` writes them);
//! - any other extension type is an error.
//!
//! Values nest at most [`MAX_DEPTH`] deep, the limit `serde_json` reads with.

use super::{
    Close, Completion, Decoded, Headers, HubMessage, HubProtocol, Invocation, Outcome,
    ProtocolError, StreamItem,
};
use crate::broadcast::{Broadcast, Encoder};
use bytes::{Buf, Bytes, BytesMut};
use negotiate::TransferFormat;
use rmp::Marker;
use serde_json::{Map, Number, Value};

#[derive(Debug, Default, Clone, Copy)]
pub struct MessagePackHubProtocol;

/// At most 5 bytes of prefix, and a length that fits an `i32`.
const MAX_PREFIX_BYTES: usize = 5;
const MAX_LENGTH: u64 = i32::MAX as u64;
/// How deep arrays and maps may nest inside one argument, item or result.
const MAX_DEPTH: usize = 128;
/// The MessagePack extension type of timestamps.
const TIMESTAMP: i8 = -1;

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::MessagePack(message.into())
}

/// The length prefix at the front of `input`: `Ok(Some((prefix bytes, body length)))`, or
/// `Ok(None)` if it is not all there yet. A length over `limit` is an error as soon as the
/// bytes seen so far prove it.
pub(crate) fn read_prefix(
    input: &[u8],
    limit: usize,
) -> Result<Option<(usize, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for (i, &byte) in input.iter().take(MAX_PREFIX_BYTES).enumerate() {
        length |= u64::from(byte & 0x7f) << (7 * i);
        if length > MAX_LENGTH {
            return Err(invalid("the message length is larger than 2147483647"));
        }
        // Lossless: at most 2^31 - 1.
        if length as usize > limit {
            return Err(ProtocolError::MessageTooLarge { limit });
        }
        if byte & 0x80 == 0 {
            return Ok(Some((i + 1, length as usize)));
        }
    }
    if input.len() >= MAX_PREFIX_BYTES {
        return Err(invalid("the length prefix is longer than 5 bytes"));
    }
    Ok(None)
}

/// Write `length` as a varint into `prefix`; returns how many bytes it took.
pub(crate) fn prefix_bytes(mut length: usize, prefix: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            prefix[i] = byte;
            return i + 1;
        }
        prefix[i] = byte | 0x80;
        i += 1;
    }
}

/// What a marker starts, for error messages.
fn describe(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "nil",
        Marker::True | Marker::False => "a boolean",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64 => "an integer",
        Marker::F32 | Marker::F64 => "a float",
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32 => "a string",
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => "binary data",
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32 => "an array",
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32 => "a map",
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16
        | Marker::Ext8
        | Marker::Ext16
        | Marker::Ext32 => "an extension value",
        Marker::Reserved => "the reserved byte 0xc1",
    }
}

/// A cursor over one message body. Every read checks the bytes are there; nothing panics.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < count {
            return Err(invalid(format!("{what}: the message ends early")));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn marker(&mut self, what: &str) -> Result<Marker, ProtocolError> {
        Ok(Marker::from_u8(self.array::<1>(what)?[0]))
    }

    fn peek(&self) -> Option<Marker> {
        self.bytes.first().map(|&b| Marker::from_u8(b))
    }

    fn wrong(what: &str, expected: &str, found: Marker) -> ProtocolError {
        invalid(format!(
            "{what}: expected {expected}, found {}",
            describe(found)
        ))
    }

    /// The integer `marker` starts, if it starts one.
    fn integer_after(&mut self, marker: Marker, what: &str) -> Result<Option<i128>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixPos(n) => n.into(),
            Marker::FixNeg(n) => n.into(),
            Marker::U8 => u8::from_be_bytes(self.array(what)?).into(),
            Marker::U16 => u16::from_be_bytes(self.array(what)?).into(),
            Marker::U32 => u32::from_be_bytes(self.array(what)?).into(),
            Marker::U64 => u64::from_be_bytes(self.array(what)?).into(),
            Marker::I8 => i8::from_be_bytes(self.array(what)?).into(),
            Marker::I16 => i16::from_be_bytes(self.array(what)?).into(),
            Marker::I32 => i32::from_be_bytes(self.array(what)?).into(),
            Marker::I64 => i64::from_be_bytes(self.array(what)?).into(),
            _ => return Ok(None),
        }))
    }

    /// The length that follows a 8/16/32-bit length marker.
    fn length(&mut self, bits: u8, what: &str) -> Result<usize, ProtocolError> {
        Ok(match bits {
            8 => u8::from_be_bytes(self.array(what)?).into(),
            16 => u16::from_be_bytes(self.array(what)?).into(),
            _ => u32::from_be_bytes(self.array(what)?) as usize,
        })
    }

    fn str_after(&mut self, marker: Marker, what: &str) -> Result<Option<String>, ProtocolError> {
        let length = match marker {
            Marker::FixStr(n) => n.into(),
            Marker::Str8 => self.length(8, what)?,
            Marker::Str16 => self.length(16, what)?,
            Marker::Str32 => self.length(32, what)?,
            _ => return Ok(None),
        };
        let text = std::str::from_utf8(self.take(length, what)?)
            .map_err(|_| invalid(format!("{what}: the string is not UTF-8")))?;
        Ok(Some(text.to_owned()))
    }

    fn array_len_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<usize>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixArray(n) => n.into(),
            Marker::Array16 => self.length(16, what)?,
            Marker::Array32 => self.length(32, what)?,
            _ => return Ok(None),
        }))
    }

    fn map_len_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<usize>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixMap(n) => n.into(),
            Marker::Map16 => self.length(16, what)?,
            Marker::Map32 => self.length(32, what)?,
            _ => return Ok(None),
        }))
    }

    fn integer(&mut self, what: &str) -> Result<i128, ProtocolError> {
        let marker = self.marker(what)?;
        self.integer_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "an integer", marker))
    }

    fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        let marker = self.marker(what)?;
        self.str_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "a string", marker))
    }

    fn nil(&mut self) -> bool {
        if self.peek() == Some(Marker::Null) {
            self.bytes = &self.bytes[1..];
            true
        } else {
            false
        }
    }

    fn optional_string(&mut self, what: &str) -> Result<Option<String>, ProtocolError> {
        if self.nil() {
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    fn boolean(&mut self, what: &str) -> Result<bool, ProtocolError> {
        match self.marker(what)? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            marker => Err(Self::wrong(what, "a boolean", marker)),
        }
    }

    fn array_len(&mut self, what: &str) -> Result<usize, ProtocolError> {
        let marker = self.marker(what)?;
        self.array_len_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "an array", marker))
    }

    /// A capacity to reserve for `count` elements: each takes at least one byte, so a count
    /// larger than what is left is a lie that must not allocate.
    fn capacity(&self, count: usize) -> usize {
        count.min(self.bytes.len())
    }

    fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let marker = self.marker("headers")?;
        let count = self
            .map_len_after(marker, "headers")?
            .ok_or_else(|| Self::wrong("headers", "a map", marker))?;
        let mut headers = Headers::new();
        for _ in 0..count {
            let key = self.string("a header name")?;
            let value = self.string("a header value")?;
            headers.insert(key, value);
        }
        Ok(headers)
    }

    fn values(&mut self, what: &str) -> Result<Vec<Value>, ProtocolError> {
        let count = self.array_len(what)?;
        let mut values = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            values.push(self.value(what, 0)?);
        }
        Ok(values)
    }

    fn strings(&mut self, what: &str) -> Result<Vec<String>, ProtocolError> {
        let count = self.array_len(what)?;
        let mut strings = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            strings.push(self.string(what)?);
        }
        Ok(strings)
    }

    /// Any MessagePack value as JSON (see the module documentation for the mapping).
    fn value(&mut self, what: &str, depth: usize) -> Result<Value, ProtocolError> {
        let marker = self.marker(what)?;
        if let Some(integer) = self.integer_after(marker, what)? {
            // Integers come from at most 64 bits of either sign.
            return Ok(match u64::try_from(integer) {
                Ok(unsigned) => unsigned.into(),
                Err(_) => (integer as i64).into(),
            });
        }
        if let Some(text) = self.str_after(marker, what)? {
            return Ok(Value::String(text));
        }
        let nested = depth + 1;
        if let Some(count) = self.array_len_after(marker, what)? {
            if nested > MAX_DEPTH {
                return Err(invalid(format!("{what}: nested deeper than {MAX_DEPTH}")));
            }
            let mut values = Vec::with_capacity(self.capacity(count));
            for _ in 0..count {
                values.push(self.value(what, nested)?);
            }
            return Ok(Value::Array(values));
        }
        if let Some(count) = self.map_len_after(marker, what)? {
            if nested > MAX_DEPTH {
                return Err(invalid(format!("{what}: nested deeper than {MAX_DEPTH}")));
            }
            let mut map = Map::new();
            for _ in 0..count {
                let key = self.key(what)?;
                let value = self.value(what, nested)?;
                map.insert(key, value);
            }
            return Ok(Value::Object(map));
        }
        Ok(match marker {
            Marker::Null => Value::Null,
            Marker::True => Value::Bool(true),
            Marker::False => Value::Bool(false),
            Marker::F32 => float(f32::from_be_bytes(self.array(what)?).into()),
            Marker::F64 => float(f64::from_be_bytes(self.array(what)?)),
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let bits = match marker {
                    Marker::Bin8 => 8,
                    Marker::Bin16 => 16,
                    _ => 32,
                };
                let length = self.length(bits, what)?;
                let data = self.take(length, what)?;
                Value::Array(data.iter().map(|&byte| Value::from(byte)).collect())
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                let length = match marker {
                    Marker::FixExt1 => 1,
                    Marker::FixExt2 => 2,
                    Marker::FixExt4 => 4,
                    Marker::FixExt8 => 8,
                    Marker::FixExt16 => 16,
                    Marker::Ext8 => self.length(8, what)?,
                    Marker::Ext16 => self.length(16, what)?,
                    _ => self.length(32, what)?,
                };
                let [kind] = self.array::<1>(what)?;
                let data = self.take(length, what)?;
                if kind as i8 != TIMESTAMP {
                    return Err(invalid(format!(
                        "{what}: the extension type {} has no JSON form",
                        kind as i8
                    )));
                }
                Value::String(timestamp(data).map_err(|e| invalid(format!("{what}: {e}")))?)
            }
            // Everything else was handled above.
            _ => return Err(Self::wrong(what, "a value", marker)),
        })
    }

    /// A map key inside a value: a string, or an integer written as decimal text.
    fn key(&mut self, what: &str) -> Result<String, ProtocolError> {
        let marker = self.marker(what)?;
        if let Some(text) = self.str_after(marker, what)? {
            return Ok(text);
        }
        if let Some(integer) = self.integer_after(marker, what)? {
            return Ok(integer.to_string());
        }
        Err(Self::wrong(
            what,
            "a map key that is a string or an integer",
            marker,
        ))
    }
}

/// A float as JSON: NaN and infinities have no JSON form and become `null`.
fn float(value: f64) -> Value {
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

/// A MessagePack timestamp (32, 64 or 96 bit) as an RFC 3339 UTC string.
fn timestamp(data: &[u8]) -> Result<String, String> {
    let (seconds, nanoseconds): (i64, u32) = match data.len() {
        4 => (
            u32::from_be_bytes(data.try_into().unwrap_or_default()).into(),
            0,
        ),
        8 => {
            let both = u64::from_be_bytes(data.try_into().unwrap_or_default());
            ((both & ((1 << 34) - 1)) as i64, (both >> 34) as u32)
        }
        12 => {
            let (nanoseconds, seconds) = data.split_at(4);
            (
                i64::from_be_bytes(seconds.try_into().unwrap_or_default()),
                u32::from_be_bytes(nanoseconds.try_into().unwrap_or_default()),
            )
        }
        length => return Err(format!("a timestamp of {length} bytes")),
    };
    if nanoseconds >= 1_000_000_000 {
        return Err(format!("a timestamp with {nanoseconds} nanoseconds"));
    }
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return Err(format!(
            "the timestamp {seconds}s is outside years 0000-9999"
        ));
    }
    let time = seconds.rem_euclid(86_400);
    let fraction = if nanoseconds % 1_000_000 == 0 {
        format!("{:03}", nanoseconds / 1_000_000)
    } else if nanoseconds % 1_000 == 0 {
        format!("{:06}", nanoseconds / 1_000)
    } else {
        format!("{nanoseconds:09}")
    };
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    ))
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn arity(name: &str, length: usize, allowed: &[usize]) -> Result<(), ProtocolError> {
    if allowed.contains(&length) {
        return Ok(());
    }
    let expected = match allowed {
        [one] => one.to_string(),
        [one, two] => format!("{one} or {two}"),
        _ => format!("{allowed:?}"),
    };
    Err(invalid(format!(
        "{name} has {length} elements, expected {expected}"
    )))
}

/// Decode one message body.
pub(crate) fn parse_body(body: &[u8]) -> Result<Decoded, ProtocolError> {
    let mut r = Reader { bytes: body };
    let length = r.array_len("a message")?;
    if length == 0 {
        return Err(invalid("a message is an empty array"));
    }
    let message = match r.integer("the message type")? {
        kind @ (1 | 4) => {
            let name = if kind == 1 {
                "Invocation"
            } else {
                "StreamInvocation"
            };
            arity(name, length, &[5, 6])?;
            let headers = r.headers()?;
            // An empty id is no id, as .NET reads it.
            let invocation_id = r
                .optional_string("invocationId")?
                .filter(|id| !id.is_empty());
            let target = r.string("target")?;
            let arguments = r.values("arguments")?;
            let stream_ids = if length == 6 {
                r.strings("streamIds")?
            } else {
                Vec::new()
            };
            let invocation = Invocation {
                headers,
                invocation_id,
                target,
                arguments,
                stream_ids,
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                if invocation.invocation_id.is_none() {
                    return Err(invalid("invocationId: a StreamInvocation needs one"));
                }
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => {
            arity("StreamItem", length, &[4])?;
            HubMessage::StreamItem(StreamItem {
                headers: r.headers()?,
                invocation_id: r.string("invocationId")?,
                item: r.value("item", 0)?,
            })
        }
        3 => {
            arity("Completion", length, &[4, 5])?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?;
            let outcome = match (r.integer("the result kind")?, length) {
                (1, 5) => Outcome::Error(r.string("error")?),
                (2, 4) => Outcome::Void,
                (3, 5) => Outcome::Result(r.value("result", 0)?),
                (kind @ 1..=3, _) => {
                    return Err(invalid(format!(
                        "Completion of result kind {kind} has {length} elements, expected {}",
                        if kind == 2 { 4 } else { 5 }
                    )))
                }
                (kind, _) => {
                    return Err(invalid(format!("the result kind {kind} is not 1, 2 or 3")))
                }
            };
            HubMessage::Completion(Completion {
                headers,
                invocation_id,
                outcome,
            })
        }
        5 => {
            arity("CancelInvocation", length, &[3])?;
            HubMessage::CancelInvocation {
                headers: r.headers()?,
                invocation_id: r.string("invocationId")?,
            }
        }
        6 => {
            arity("Ping", length, &[1])?;
            HubMessage::Ping
        }
        7 => {
            arity("Close", length, &[2, 3])?;
            let error = r.optional_string("error")?;
            let allow_reconnect = length == 3 && r.boolean("allowReconnect")?;
            HubMessage::Close(Close {
                error,
                allow_reconnect,
            })
        }
        kind @ (8 | 9) => {
            arity(if kind == 8 { "Ack" } else { "Sequence" }, length, &[2])?;
            let sequence_id = u64::try_from(r.integer("sequenceId")?)
                .map_err(|_| invalid("sequenceId: a negative number"))?;
            if kind == 8 {
                HubMessage::Ack { sequence_id }
            } else {
                HubMessage::Sequence { sequence_id }
            }
        }
        // A type this version does not know: skipped, whatever follows it in the frame.
        _ => return Ok(Decoded::Unknown),
    };
    if !r.bytes.is_empty() {
        return Err(invalid(format!(
            "{} bytes after the message",
            r.bytes.len()
        )));
    }
    Ok(Decoded::Message(message))
}

// Writing into a `Vec` cannot fail (rmp's error type for it is `Infallible`), hence the
// ignored results below.

fn put_array(out: &mut Vec<u8>, length: usize) {
    let _ = rmp::encode::write_array_len(out, length as u32);
}

fn put_uint(out: &mut Vec<u8>, value: u64) {
    let _ = rmp::encode::write_uint(out, value);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    let _ = rmp::encode::write_str(out, text);
}

fn put_optional_str(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => put_str(out, text),
        None => out.push(0xc0),
    }
}

fn put_headers(out: &mut Vec<u8>, headers: &Headers) {
    let _ = rmp::encode::write_map_len(out, headers.len() as u32);
    for (key, value) in headers {
        put_str(out, key);
        put_str(out, value);
    }
}

/// A JSON value as MessagePack: integers in their smallest encoding, other numbers as float 64,
/// objects as maps with string keys.
fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => {
            if let Some(unsigned) = n.as_u64() {
                put_uint(out, unsigned);
            } else if let Some(signed) = n.as_i64() {
                let _ = rmp::encode::write_sint(out, signed);
            } else {
                let _ = rmp::encode::write_f64(out, n.as_f64().unwrap_or(f64::NAN));
            }
        }
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

fn put_invocation(
    out: &mut Vec<u8>,
    kind: u64,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    arguments: &[Value],
    stream_ids: &[String],
) {
    put_array(out, 6);
    put_uint(out, kind);
    put_headers(out, headers);
    put_optional_str(out, invocation_id);
    put_str(out, target);
    put_array(out, arguments.len());
    for argument in arguments {
        put_value(out, argument);
    }
    put_array(out, stream_ids.len());
    for id in stream_ids {
        put_str(out, id);
    }
}

fn write_body(message: &HubMessage, out: &mut Vec<u8>) {
    match message {
        HubMessage::Invocation(i) | HubMessage::StreamInvocation(i) => put_invocation(
            out,
            if matches!(message, HubMessage::Invocation(_)) {
                1
            } else {
                4
            },
            &i.headers,
            i.invocation_id.as_deref(),
            &i.target,
            &i.arguments,
            &i.stream_ids,
        ),
        HubMessage::StreamItem(s) => {
            put_array(out, 4);
            put_uint(out, 2);
            put_headers(out, &s.headers);
            put_str(out, &s.invocation_id);
            put_value(out, &s.item);
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
                    put_value(out, value);
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
fn framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
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

impl HubProtocol for MessagePackHubProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn decode(&self, input: &mut BytesMut, limit: usize) -> Result<Decoded, ProtocolError> {
        let Some((prefix, length)) = read_prefix(input, limit)? else {
            return Ok(Decoded::Incomplete);
        };
        let end = prefix + length;
        if input.len() < end {
            return Ok(Decoded::Incomplete);
        }
        let decoded = parse_body(&input[prefix..end]);
        input.advance(end);
        decoded
    }

    fn encode_message(&self, message: &HubMessage, out: &mut Vec<u8>) {
        framed(out, |body| write_body(message, body));
    }

    fn encode_invocation(&self, target: &str, arguments: &[Value], out: &mut Vec<u8>) {
        framed(out, |body| {
            put_invocation(body, 1, &Headers::new(), None, target, arguments, &[])
        });
    }
}

impl Encoder for MessagePackHubProtocol {
    fn encode(&self, message: &Broadcast) -> Option<Bytes> {
        let mut out = Vec::with_capacity(128);
        self.encode_invocation(&message.target, &message.arguments, &mut out);
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests;
