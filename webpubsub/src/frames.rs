//! What the server writes, byte for byte in the service's field order: `system` messages,
//! acks, `pong`, `invokeResponse`. Data messages (`type: "message"`) come from the
//! [`crate::encoder`], since the router makes them once per protocol.

use base64::Engine;
use bytes::Bytes;
use router::Payload;

/// An ack's `error.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    BadRequest,
    Forbidden,
    InternalServerError,
    Duplicate,
}

impl AckError {
    pub fn name(self) -> &'static str {
        match self {
            AckError::BadRequest => "BadRequest",
            AckError::Forbidden => "Forbidden",
            AckError::InternalServerError => "InternalServerError",
            AckError::Duplicate => "Duplicate",
        }
    }
}

pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

pub(crate) fn write_optional(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// `"dataType":…,"data":…` for a payload.
pub(crate) fn write_data(out: &mut Vec<u8>, data: &Payload) {
    out.extend_from_slice(b"\"dataType\":\"");
    out.extend_from_slice(data.data_type().as_bytes());
    out.extend_from_slice(b"\",\"data\":");
    match data {
        Payload::Json(value) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
        Payload::Text(text) => write_str(out, text),
        Payload::Binary(bytes) => {
            out.push(b'"');
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'"');
        }
    }
}

/// The first message of every connection.
pub fn connected(
    user_id: Option<&str>,
    connection_id: &str,
    reconnection_token: Option<&str>,
) -> Bytes {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(br#"{"type":"system","event":"connected","userId":"#);
    write_optional(&mut out, user_id);
    out.extend_from_slice(br#","connectionId":"#);
    write_str(&mut out, connection_id);
    if let Some(token) = reconnection_token {
        out.extend_from_slice(br#","reconnectionToken":"#);
        write_str(&mut out, token);
    }
    out.push(b'}');
    out.into()
}

/// Written just before the server closes a connection.
pub fn disconnected(message: &str) -> Bytes {
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(br#"{"type":"system","event":"disconnected","message":"#);
    write_str(&mut out, message);
    out.push(b'}');
    out.into()
}

pub fn ack_ok(ack_id: u64) -> Bytes {
    format!(r#"{{"type":"ack","ackId":{ack_id},"success":true}}"#).into()
}

pub fn ack_error(ack_id: u64, error: AckError, message: &str) -> Bytes {
    let mut out = Vec::with_capacity(96 + message.len());
    out.extend_from_slice(
        format!(r#"{{"type":"ack","ackId":{ack_id},"success":false,"error":{{"name":""#).as_bytes(),
    );
    out.extend_from_slice(error.name().as_bytes());
    out.extend_from_slice(br#"","message":"#);
    write_str(&mut out, message);
    out.extend_from_slice(b"}}");
    out.into()
}

pub fn pong() -> Bytes {
    Bytes::from_static(br#"{"type":"pong"}"#)
}

/// A successful `invoke`: the handler's answer, if it had one.
pub fn invoke_ok(invocation_id: &str, data: Option<&Payload>) -> Bytes {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(br#"{"type":"invokeResponse","invocationId":"#);
    write_str(&mut out, invocation_id);
    out.extend_from_slice(br#","success":true"#);
    if let Some(data) = data {
        out.push(b',');
        write_data(&mut out, data);
    }
    out.push(b'}');
    out.into()
}

pub fn invoke_error(invocation_id: &str, error: AckError, message: &str) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(br#"{"type":"invokeResponse","invocationId":"#);
    write_str(&mut out, invocation_id);
    out.extend_from_slice(br#","success":false,"error":{"name":""#);
    out.extend_from_slice(error.name().as_bytes());
    out.extend_from_slice(br#"","message":"#);
    write_str(&mut out, message);
    out.extend_from_slice(b"}}");
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(frame: Bytes) -> Value {
        serde_json::from_slice(&frame).unwrap()
    }

    #[test]
    fn frames_are_the_services_json() {
        assert_eq!(
            parsed(connected(Some("u\"1"), "c1", Some("t"))),
            json!({"type":"system","event":"connected","userId":"u\"1","connectionId":"c1","reconnectionToken":"t"})
        );
        assert_eq!(
            parsed(connected(None, "c1", None)),
            json!({"type":"system","event":"connected","userId":null,"connectionId":"c1"})
        );
        assert_eq!(
            parsed(disconnected("bye")),
            json!({"type":"system","event":"disconnected","message":"bye"})
        );
        assert_eq!(
            parsed(ack_error(7, AckError::Forbidden, "no \"way\"")),
            json!({"type":"ack","ackId":7,"success":false,"error":{"name":"Forbidden","message":"no \"way\""}})
        );
        assert_eq!(
            parsed(invoke_ok("i", Some(&Payload::Binary(vec![1, 2].into())))),
            json!({"type":"invokeResponse","invocationId":"i","success":true,"dataType":"binary","data":"AQI="})
        );
        assert_eq!(
            parsed(invoke_error("i", AckError::InternalServerError, "x")),
            json!({"type":"invokeResponse","invocationId":"i","success":false,"error":{"name":"InternalServerError","message":"x"}})
        );
    }
}
