//! The `messagepack` hub protocol: each message is a varint length prefix and a MessagePack
//! array whose first element is the message type.
//!
//! Read leniently, as .NET reads it (Invocation and StreamInvocation with 5 or 6 elements,
//! Close with 2 or 3, an empty invocation id taken as none, integers of any width, non-canonical
//! length prefixes); written as .NET writes it (Invocation with 6 elements and a nil id when
//! there is none, Close with 3, Completion kinds 1/2/3, integers in their smallest encoding,
//! floats as float 64).
//!
//! Arguments, stream items and results are [`HubValue`]s: `bin 8/16/32` is binary, written as
//! the smallest `bin`; the timestamp extension (type −1, what the JS client sends for a `Date`)
//! in any of its 32, 64 and 96-bit forms is a timestamp, written in the smallest form as .NET
//! writes it. Values with no hub value form:
//! - map keys that are integers become their decimal text (as `System.Text.Json` writes a
//!   `Dictionary<int, T>`); any other non-string key is an error;
//! - NaN and infinities become `null` (as `JSON.stringify` writes them);
//! - any other extension type is an error.
//!
//! Values nest at most [`MAX_DEPTH`] deep, the limit `serde_json` reads with.

use super::{
    Close, Completion, Decoded, Field, Headers, HubMap, HubMessage, HubProtocol, HubValue,
    Invocation, Outcome, ProtocolError, StreamItem, Timestamp,
};
use bytes::{Buf, Bytes, BytesMut};
use negotiate::TransferFormat;
use rmp::Marker;
use serde_json::Value;

mod read;
mod write;

use read::*;
use write::*;

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

    fn encode_object_invocation(
        &self,
        target: &str,
        argument: &[(&str, Field<'_>)],
        out: &mut Vec<u8>,
    ) {
        framed(out, |body| put_object_invocation(body, target, argument));
    }
}

#[cfg(test)]
mod tests;
