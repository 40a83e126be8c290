//! What clients send (`type` = `joinGroup`, `leaveGroup`, `sendToGroup`, `event`,
//! `sequenceAck`, `ping`, `invoke`, `cancelInvocation`), parsed strictly as the service does:
//! a message that is not valid JSON, not an object, of an unknown type, or with a field of
//! the wrong type is an [`InvalidMessage`], which closes the connection (1007). Unknown
//! fields are ignored. Channel names are not judged here: the application's rules answer
//! them with acks.

use base64::Engine;
use router::Payload;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    JoinGroup {
        group: String,
        ack_id: Option<u64>,
    },
    LeaveGroup {
        group: String,
        ack_id: Option<u64>,
    },
    SendToGroup {
        group: String,
        ack_id: Option<u64>,
        data: Payload,
        no_echo: bool,
    },
    /// A user event for the event handler.
    Event {
        event: String,
        ack_id: Option<u64>,
        data: Payload,
    },
    SequenceAck {
        sequence_id: u64,
    },
    Ping,
    /// A user event whose handler's answer comes back as an `invokeResponse` (SDK ≥ 1.0.4).
    Invoke {
        invocation_id: String,
        event: String,
        data: Option<Payload>,
    },
    CancelInvocation {
        invocation_id: String,
    },
}

impl ClientMessage {
    /// The ack id of a request that owes an ack.
    pub fn ack_id(&self) -> Option<u64> {
        match self {
            ClientMessage::JoinGroup { ack_id, .. }
            | ClientMessage::LeaveGroup { ack_id, .. }
            | ClientMessage::SendToGroup { ack_id, .. }
            | ClientMessage::Event { ack_id, .. } => *ack_id,
            _ => None,
        }
    }
}

/// Why a message was refused; the text goes to the log and the close reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidMessage(pub String);

fn invalid(reason: impl Into<String>) -> InvalidMessage {
    InvalidMessage(reason.into())
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ackId")]
    ack_id: Option<u64>,
    group: Option<String>,
    event: Option<String>,
    #[serde(rename = "dataType", borrow)]
    data_type: Option<Cow<'a, str>>,
    /// Present-but-null stays `Some("null")`, to be refused as the service does.
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(rename = "noEcho")]
    no_echo: Option<bool>,
    #[serde(rename = "sequenceId")]
    sequence_id: Option<u64>,
    #[serde(rename = "invocationId")]
    invocation_id: Option<String>,
    target: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parse one text frame.
pub fn parse(frame: &[u8]) -> Result<ClientMessage, InvalidMessage> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(invalid("A message is a JSON object."));
    }
    let raw: Raw<'_> =
        serde_json::from_slice(frame).map_err(|e| invalid(format!("Invalid JSON: {e}")))?;
    let kind = raw
        .kind
        .as_deref()
        .ok_or_else(|| invalid("Missing required property 'type'."))?;
    let group = |raw: &Raw<'_>| -> Result<String, InvalidMessage> {
        match &raw.group {
            Some(group) if !group.trim().is_empty() && group.len() <= 1024 => Ok(group.clone()),
            Some(_) => Err(invalid("The group name is invalid.")),
            None => Err(invalid("Missing required property 'group'.")),
        }
    };
    let message = match kind.to_ascii_lowercase().as_str() {
        "ping" => ClientMessage::Ping,
        "sequenceack" => ClientMessage::SequenceAck {
            sequence_id: raw
                .sequence_id
                .ok_or_else(|| invalid("Missing required property 'sequenceId'."))?,
        },
        "joingroup" => ClientMessage::JoinGroup {
            group: group(&raw)?,
            ack_id: raw.ack_id,
        },
        "leavegroup" => ClientMessage::LeaveGroup {
            group: group(&raw)?,
            ack_id: raw.ack_id,
        },
        "sendtogroup" => ClientMessage::SendToGroup {
            group: group(&raw)?,
            ack_id: raw.ack_id,
            data: data(raw.data_type.as_deref(), raw.data)?
                .ok_or_else(|| invalid("Missing required property 'data'."))?,
            no_echo: raw.no_echo.unwrap_or(false),
        },
        "event" => ClientMessage::Event {
            event: event_name(raw.event.as_deref())?,
            ack_id: raw.ack_id,
            data: data(raw.data_type.as_deref(), raw.data)?
                .ok_or_else(|| invalid("Missing required property 'data'."))?,
        },
        "invoke" => {
            let invocation_id = raw
                .invocation_id
                .clone()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| invalid("Missing required property 'invocationId'."))?;
            if raw.target.as_deref().is_some_and(|t| t != "event") {
                return Err(invalid("An invoke's 'target' is 'event'."));
            }
            ClientMessage::Invoke {
                invocation_id,
                event: event_name(raw.event.as_deref())?,
                data: data(raw.data_type.as_deref(), raw.data)?,
            }
        }
        "cancelinvocation" => ClientMessage::CancelInvocation {
            invocation_id: raw
                .invocation_id
                .ok_or_else(|| invalid("Missing required property 'invocationId'."))?,
        },
        other => return Err(invalid(format!("Unknown 'type': {other}."))),
    };
    Ok(message)
}

/// Event names as the service takes them: a letter, then letters, digits, `_`, `.`, `-`.
fn event_name(name: Option<&str>) -> Result<String, InvalidMessage> {
    let name = name.ok_or_else(|| invalid("Missing required property 'event'."))?;
    let valid = name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(invalid("The event name is invalid."))
    }
}

/// `data` by `dataType`: `json` (the default; any value but null), `text` (a string),
/// `binary` (standard base64). `None` when there is no `data`.
fn data(
    data_type: Option<&str>,
    data: Option<&RawValue>,
) -> Result<Option<Payload>, InvalidMessage> {
    let Some(data) = data else {
        return Ok(None);
    };
    let data_type = data_type.unwrap_or("json");
    let payload = if data_type.eq_ignore_ascii_case("json") {
        let value: serde_json::Value = serde_json::from_str(data.get())
            .map_err(|e| invalid(format!("Invalid 'data': {e}")))?;
        if value.is_null() {
            return Err(invalid("Invalid value for 'data': null."));
        }
        Payload::Json(value)
    } else if data_type.eq_ignore_ascii_case("text") {
        let text: String = serde_json::from_str(data.get())
            .map_err(|_| invalid("'data' should be a string when 'dataType' is 'text'."))?;
        Payload::Text(text.into())
    } else if data_type.eq_ignore_ascii_case("binary") {
        let text: Cow<'_, str> = serde_json::from_str(data.get())
            .map_err(|_| invalid("'data' is not a valid base64 encoded string."))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| invalid("'data' is not a valid base64 encoded string."))?;
        Payload::Binary(bytes.into())
    } else {
        return Err(invalid(format!("Unknown 'dataType': {data_type}.")));
    };
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(text: &str) -> ClientMessage {
        parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        match parse(text.as_bytes()) {
            Err(InvalidMessage(reason)) => reason,
            Ok(message) => panic!("{text} parsed as {message:?}"),
        }
    }

    #[test]
    fn what_the_sdk_sends_parses() {
        assert_eq!(
            ok(
                r#"{"type":"sendToGroup","group":"app:g","ackId":3,"dataType":"json","data":{"a":[1]},"noEcho":true}"#
            ),
            ClientMessage::SendToGroup {
                group: "app:g".into(),
                ack_id: Some(3),
                data: Payload::Json(json!({"a": [1]})),
                no_echo: true
            }
        );
        assert_eq!(
            ok(
                r#"{"type":"sendToGroup","group":"g","dataType":"text","data":"hi","noEcho":false}"#
            ),
            ClientMessage::SendToGroup {
                group: "g".into(),
                ack_id: None,
                data: Payload::Text("hi".into()),
                no_echo: false
            }
        );
        assert_eq!(
            ok(r#"{"type":"event","event":"chat.v1","dataType":"binary","data":"AAEC","ackId":9}"#),
            ClientMessage::Event {
                event: "chat.v1".into(),
                ack_id: Some(9),
                data: Payload::Binary(vec![0, 1, 2].into())
            }
        );
        assert_eq!(ok(r#"{"type":"ping"}"#), ClientMessage::Ping);
        assert_eq!(
            ok(r#"{"type":"sequenceAck","sequenceId":12}"#),
            ClientMessage::SequenceAck { sequence_id: 12 }
        );
        assert_eq!(
            ok(r#"{"type":"invoke","invocationId":"1","target":"event","event":"e"}"#),
            ClientMessage::Invoke {
                invocation_id: "1".into(),
                event: "e".into(),
                data: None
            }
        );
        assert_eq!(
            ok(r#" {"type":"LEAVEGROUP","group":"g","ackId":null,"extra":1}"#),
            ClientMessage::LeaveGroup {
                group: "g".into(),
                ack_id: None
            }
        );
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        assert!(refused("not json").contains("JSON object"));
        assert!(refused("[1]").contains("JSON object"));
        assert!(refused(r#"{"type":"joinGroup","group":"g""#).contains("Invalid JSON"));
        assert!(refused(r#"{"group":"g"}"#).contains("'type'"));
        assert!(refused(r#"{"type":"teleport"}"#).contains("Unknown 'type'"));
        assert!(refused(r#"{"type":"joinGroup"}"#).contains("'group'"));
        assert!(refused(r#"{"type":"joinGroup","group":"  "}"#).contains("group name"));
        assert!(refused(r#"{"type":"joinGroup","group":"g","ackId":"1"}"#).contains("Invalid JSON"));
        assert!(refused(r#"{"type":"joinGroup","group":"g","ackId":-1}"#).contains("Invalid JSON"));
        assert!(refused(r#"{"type":"sendToGroup","group":"g"}"#).contains("'data'"));
        assert!(refused(r#"{"type":"sendToGroup","group":"g","data":null}"#).contains("null"));
        assert!(
            refused(r#"{"type":"sendToGroup","group":"g","dataType":"text","data":1}"#)
                .contains("string")
        );
        assert!(
            refused(r#"{"type":"sendToGroup","group":"g","dataType":"binary","data":"!!"}"#)
                .contains("base64")
        );
        assert!(
            refused(r#"{"type":"sendToGroup","group":"g","dataType":"protobuf","data":""}"#)
                .contains("dataType")
        );
        assert!(refused(r#"{"type":"event","event":"1st","data":1}"#).contains("event name"));
        assert!(refused(r#"{"type":"sequenceAck"}"#).contains("sequenceId"));
        assert!(refused(r#"{"type":"invoke","event":"e"}"#).contains("invocationId"));
    }
}
