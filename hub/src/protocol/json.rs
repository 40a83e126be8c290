//! The `json` hub protocol: one UTF-8 JSON object per message, each followed by 0x1E.
//!
//! Read leniently, as .NET reads it (keys in any order, `type` anywhere, unknown keys and unknown
//! types skipped, a `null` invocation id taken as absent); written strictly, as clients need it
//! (absent optionals omitted, never `"invocationId":null`, `item` always present).
//!
//! Arguments, stream items and results are read as [`HubValue`]s without binary or timestamps
//! (JSON has neither); those are written as ASP.NET Core writes `byte[]` and `DateTime`:
//! standard base64 and ISO 8601 strings.

use super::{
    find_record, Close, Completion, Decoded, Field, Headers, HubMessage, HubProtocol, HubValue,
    Invocation, Outcome, ProtocolError, StreamItem, RECORD_SEPARATOR,
};
use bytes::BytesMut;
use negotiate::TransferFormat;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

#[derive(Debug, Default, Clone, Copy)]
pub struct JsonHubProtocol;

/// Every field any message type may carry; which are required depends on `type`.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "type")]
    kind: Option<i64>,
    #[serde(rename = "invocationId")]
    invocation_id: Option<String>,
    target: Option<String>,
    arguments: Option<Vec<HubValue>>,
    #[serde(rename = "streamIds")]
    stream_ids: Option<Vec<String>>,
    headers: Option<Headers>,
    /// `Some(Null)` when the key is present with `null`: `item: null` is a valid stream item.
    #[serde(default, deserialize_with = "present")]
    item: Option<HubValue>,
    #[serde(default, deserialize_with = "present")]
    result: Option<HubValue>,
    error: Option<String>,
    #[serde(rename = "allowReconnect")]
    allow_reconnect: Option<bool>,
    #[serde(rename = "sequenceId")]
    sequence_id: Option<u64>,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<HubValue>, D::Error> {
    HubValue::deserialize(deserializer).map(Some)
}

fn required<T>(value: Option<T>, name: &'static str) -> Result<T, ProtocolError> {
    value.ok_or(ProtocolError::MissingProperty(name))
}

/// Decode one record (without its separator).
pub(crate) fn parse_record(bytes: &[u8]) -> Result<Decoded, ProtocolError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8)?;
    // serde would also read a JSON array into the struct, by position.
    if !text.trim_start().starts_with('{') {
        return Err(ProtocolError::NotAnObject);
    }
    let wire: Wire =
        serde_json::from_str(text).map_err(|error| ProtocolError::Json(error.to_string()))?;
    let kind = required(wire.kind, "type")?;
    let headers = wire.headers.unwrap_or_default();
    let message = match kind {
        1 | 4 => {
            let invocation = Invocation {
                headers,
                invocation_id: wire.invocation_id,
                target: required(wire.target, "target")?,
                arguments: required(wire.arguments, "arguments")?,
                stream_ids: wire.stream_ids.unwrap_or_default(),
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                if invocation.invocation_id.is_none() {
                    return Err(ProtocolError::MissingProperty("invocationId"));
                }
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => HubMessage::StreamItem(StreamItem {
            headers,
            invocation_id: required(wire.invocation_id, "invocationId")?,
            item: required(wire.item, "item")?,
        }),
        3 => {
            let outcome = match (wire.error, wire.result) {
                (Some(_), Some(_)) => return Err(ProtocolError::ErrorAndResult),
                (Some(error), None) => Outcome::Error(error),
                (None, Some(result)) => Outcome::Result(result),
                (None, None) => Outcome::Void,
            };
            HubMessage::Completion(Completion {
                headers,
                invocation_id: required(wire.invocation_id, "invocationId")?,
                outcome,
            })
        }
        5 => HubMessage::CancelInvocation {
            headers,
            invocation_id: required(wire.invocation_id, "invocationId")?,
        },
        6 => HubMessage::Ping,
        7 => HubMessage::Close(Close {
            error: wire.error,
            allow_reconnect: wire.allow_reconnect.unwrap_or(false),
        }),
        8 => HubMessage::Ack {
            sequence_id: required(wire.sequence_id, "sequenceId")?,
        },
        9 => HubMessage::Sequence {
            sequence_id: required(wire.sequence_id, "sequenceId")?,
        },
        _ => return Ok(Decoded::Unknown),
    };
    Ok(Decoded::Message(message))
}

/// Writing JSON into a `Vec` fails only for maps with non-string keys, which neither value type
/// nor strings have.
fn put<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    if let Err(error) = serde_json::to_writer(&mut *out, value) {
        debug_assert!(false, "JSON serialisation into memory failed: {error}");
    }
}

fn put_headers(out: &mut Vec<u8>, headers: &Headers) {
    if !headers.is_empty() {
        out.extend_from_slice(b",\"headers\":");
        put(out, headers);
    }
}

/// Binary as a base64 JSON string, encoded straight into `out`.
fn put_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    use base64::Engine;
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = engine.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn put_invocation<T: Serialize>(
    out: &mut Vec<u8>,
    kind: u8,
    headers: &Headers,
    invocation_id: Option<&str>,
    target: &str,
    arguments: &[T],
    stream_ids: &[String],
) {
    out.extend_from_slice(if kind == 1 {
        b"{\"type\":1"
    } else {
        b"{\"type\":4"
    });
    put_headers(out, headers);
    if let Some(id) = invocation_id {
        out.extend_from_slice(b",\"invocationId\":");
        put(out, id);
    }
    out.extend_from_slice(b",\"target\":");
    put(out, target);
    out.extend_from_slice(b",\"arguments\":");
    put(out, arguments);
    if !stream_ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        put(out, stream_ids);
    }
    out.extend_from_slice(b"}");
}

impl HubProtocol for JsonHubProtocol {
    fn name(&self) -> &'static str {
        "json"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }

    fn decode(&self, input: &mut BytesMut, limit: usize) -> Result<Decoded, ProtocolError> {
        let end = match find_record(input, limit) {
            Ok(Some(end)) => end,
            Ok(None) => return Ok(Decoded::Incomplete),
            Err(()) => return Err(ProtocolError::MessageTooLarge { limit }),
        };
        let record = input.split_to(end + 1);
        parse_record(&record[..end])
    }

    fn encode_message(&self, message: &HubMessage, out: &mut Vec<u8>) {
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
                out.extend_from_slice(b"{\"type\":2");
                put_headers(out, &s.headers);
                out.extend_from_slice(b",\"invocationId\":");
                put(out, &s.invocation_id);
                // Present even when null: clients reject a StreamItem without it.
                out.extend_from_slice(b",\"item\":");
                put(out, &s.item);
                out.push(b'}');
            }
            HubMessage::Completion(c) => {
                out.extend_from_slice(b"{\"type\":3");
                put_headers(out, &c.headers);
                out.extend_from_slice(b",\"invocationId\":");
                put(out, &c.invocation_id);
                match &c.outcome {
                    Outcome::Void => {}
                    Outcome::Result(value) => {
                        out.extend_from_slice(b",\"result\":");
                        put(out, value);
                    }
                    Outcome::Error(error) => {
                        out.extend_from_slice(b",\"error\":");
                        put(out, error);
                    }
                }
                out.push(b'}');
            }
            HubMessage::CancelInvocation {
                headers,
                invocation_id,
            } => {
                out.extend_from_slice(b"{\"type\":5");
                put_headers(out, headers);
                out.extend_from_slice(b",\"invocationId\":");
                put(out, invocation_id);
                out.push(b'}');
            }
            HubMessage::Ping => out.extend_from_slice(b"{\"type\":6}"),
            HubMessage::Close(close) => {
                out.extend_from_slice(b"{\"type\":7");
                if let Some(error) = &close.error {
                    out.extend_from_slice(b",\"error\":");
                    put(out, error);
                }
                // .NET writes it only when true.
                if close.allow_reconnect {
                    out.extend_from_slice(b",\"allowReconnect\":true");
                }
                out.push(b'}');
            }
            HubMessage::Ack { sequence_id } | HubMessage::Sequence { sequence_id } => {
                out.extend_from_slice(if matches!(message, HubMessage::Ack { .. }) {
                    b"{\"type\":8,\"sequenceId\":"
                } else {
                    b"{\"type\":9,\"sequenceId\":"
                });
                put(out, sequence_id);
                out.push(b'}');
            }
        }
        out.push(RECORD_SEPARATOR);
    }

    fn encode_invocation(&self, target: &str, arguments: &[Value], out: &mut Vec<u8>) {
        put_invocation(out, 1, &Headers::new(), None, target, arguments, &[]);
        out.push(RECORD_SEPARATOR);
    }

    fn encode_object_invocation(
        &self,
        target: &str,
        argument: &[(&str, Field<'_>)],
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(b"{\"type\":1,\"target\":");
        put(out, target);
        out.extend_from_slice(b",\"arguments\":[{");
        for (i, (key, field)) in argument.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            put(out, *key);
            out.push(b':');
            match field {
                Field::Null => out.extend_from_slice(b"null"),
                Field::Str(text) => put(out, *text),
                Field::Int(n) => put(out, n),
                Field::Value(value) => put(out, *value),
                Field::Bytes(bytes) => put_base64(out, bytes),
            }
        }
        out.extend_from_slice(b"}]}");
        out.push(RECORD_SEPARATOR);
    }
}

#[cfg(test)]
mod tests;
