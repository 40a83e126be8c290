//! The CloudEvents (HTTP binary mode) that Azure Web PubSub sends its event handler, as
//! `reference-cloud-events.md` describes them and `@azure/web-pubsub-express` reads them: the
//! `ce-*` headers, the bodies, and what the handler's answers mean.

use super::{ConnectRequest, ConnectResponse, ConnectionContext};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use router::Payload;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// The service's extension version; `@azure/web-pubsub-express` ignores requests without it.
pub const AWPS_VERSION: &str = "1.0";
pub const JSON_UTF8: &str = "application/json; charset=utf-8";
const TEXT_UTF8: &str = "text/plain; charset=utf-8";
const OCTET_STREAM: &str = "application/octet-stream";
/// The header a blocking event's answer may carry to set the connection's state, which every
/// later event of the connection carries back.
pub const CONNECTION_STATE: &str = "ce-connectionstate";

/// `ce-signature`: `sha256=` and the lowercase hex HMAC-SHA256 of the connection id, keyed
/// with the access key (the service sends one such value per access key, comma-separated; we
/// have one key).
pub fn signature(access_key: &str, connection_id: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(access_key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(connection_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What every event of a connection says about it.
pub struct Envelope<'a> {
    pub context: &'a ConnectionContext,
    /// `sys.connect`, `sys.connected`, `sys.disconnected` or `user.<event>`.
    pub ce_type: String,
    pub event_name: &'a str,
    /// The signature for this connection, if an access key is configured.
    pub signature: Option<String>,
    /// `WebHook-Request-Origin`: the host the handler allowed.
    pub origin: &'a str,
    pub state: Option<HeaderValue>,
    pub with_subprotocol: bool,
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) -> bool {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            headers.insert(HeaderName::from_static(name), value);
            true
        }
        Err(_) => false,
    }
}

impl Envelope<'_> {
    /// The request headers. A user id a header cannot carry (a control character) is left out
    /// rather than failing the event; the connection id and hub always fit (they are ours).
    pub fn headers(&self, content_type: &'static str) -> HeaderMap {
        let context = self.context;
        let connection_id: &str = &context.connection_id;
        let mut headers = HeaderMap::with_capacity(16);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        insert(&mut headers, "ce-specversion", "1.0");
        insert(&mut headers, "ce-awpsversion", AWPS_VERSION);
        insert(
            &mut headers,
            "ce-type",
            &format!("azure.webpubsub.{}", self.ce_type),
        );
        insert(
            &mut headers,
            "ce-source",
            &format!("/hubs/{}/client/{connection_id}", context.hub),
        );
        insert(
            &mut headers,
            "ce-id",
            &uuid::Uuid::new_v4().simple().to_string(),
        );
        insert(
            &mut headers,
            "ce-time",
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        insert(&mut headers, "ce-hub", &context.hub);
        insert(&mut headers, "ce-connectionid", connection_id);
        insert(&mut headers, "ce-eventname", self.event_name);
        if let Some(user_id) = context.user_id.as_deref().filter(|u| !u.is_empty()) {
            if !insert(&mut headers, "ce-userid", user_id) {
                tracing::debug!(
                    connection_id = %super::warnings::LogId(connection_id),
                    "the user id has a character a header cannot carry; ce-userId left out"
                );
            }
        }
        if self.with_subprotocol && !context.subprotocol.is_empty() {
            insert(&mut headers, "ce-subprotocol", context.subprotocol);
        }
        if let Some(signature) = &self.signature {
            insert(&mut headers, "ce-signature", signature);
        }
        if let Some(state) = &self.state {
            headers.insert(HeaderName::from_static(CONNECTION_STATE), state.clone());
        }
        insert(&mut headers, "webhook-request-origin", self.origin);
        headers
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectBody<'a> {
    claims: &'a HashMap<String, Vec<String>>,
    query: &'a HashMap<String, Vec<String>>,
    headers: &'a HashMap<String, Vec<String>>,
    subprotocols: &'a [String],
    /// rthub terminates no client TLS, so there are never client certificates.
    client_certificates: [(); 0],
}

/// The `connect` event's body: `{claims, query, headers, subprotocols, clientCertificates}`.
pub fn connect_body(request: &ConnectRequest) -> Vec<u8> {
    serde_json::to_vec(&ConnectBody {
        claims: &request.claims,
        query: &request.query,
        headers: &request.headers,
        subprotocols: &request.subprotocols,
        client_certificates: [],
    })
    .unwrap_or_else(|_| b"{}".to_vec())
}

/// `disconnected`'s body: `{reason}` (no `reason` for a plain close).
pub fn disconnected_body(reason: Option<&str>) -> Vec<u8> {
    match reason {
        Some(reason) => serde_json::json!({ "reason": reason })
            .to_string()
            .into_bytes(),
        None => b"{}".to_vec(),
    }
}

/// A user event's body and content type, by the message's `dataType`.
pub fn user_event_body(data: &Payload) -> (&'static str, Bytes) {
    match data {
        Payload::Json(value) => (
            JSON_UTF8,
            Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
        ),
        Payload::Text(text) => (TEXT_UTF8, Bytes::copy_from_slice(text.as_bytes())),
        Payload::Binary(bytes) => (OCTET_STREAM, bytes.clone()),
    }
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
fn media_type(content_type: Option<&HeaderValue>) -> String {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A user event's answer as the caller's `from:"server"` message: JSON for
/// `application/json`, text for `text/plain`, binary for anything else (what the service
/// does). An empty body is no message.
pub fn reply_payload(
    content_type: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Option<Payload>, String> {
    if body.is_empty() {
        return Ok(None);
    }
    match media_type(content_type).as_str() {
        "application/json" => serde_json::from_slice(&body)
            .map(|value| Some(Payload::Json(value)))
            .map_err(|e| format!("the reply says application/json but is not JSON: {e}")),
        "text/plain" => String::from_utf8(body.to_vec())
            .map(|text| Some(Payload::Text(Arc::from(text))))
            .map_err(|_| "the reply says text/plain but is not UTF-8".to_owned()),
        _ => Ok(Some(Payload::Binary(body))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectReply {
    user_id: Option<String>,
    groups: Option<Vec<String>>,
    roles: Option<Vec<String>>,
    subprotocol: Option<String>,
}

/// A successful `connect` answer: 204 or an empty body changes nothing; otherwise JSON
/// `{userId?, groups?, roles?, subprotocol?}`. An empty `userId` or `subprotocol` is the same
/// as none (the docs' own example answers `"userId": ""`, and a blank subprotocol is not one).
pub fn connect_reply(body: &[u8]) -> Result<ConnectResponse, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ConnectResponse::default());
    }
    let reply: ConnectReply = serde_json::from_slice(body)
        .map_err(|e| format!("the connect answer is not the expected JSON: {e}"))?;
    Ok(ConnectResponse {
        user_id: reply.user_id.filter(|u| !u.is_empty()),
        groups: reply.groups,
        roles: reply.roles,
        subprotocol: reply.subprotocol.filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_the_hex_hmac_sha256_of_the_connection_id() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn reply_payload_follows_the_content_type() {
        let json = HeaderValue::from_static("application/json; charset=utf-8");
        assert_eq!(
            reply_payload(Some(&json), Bytes::from_static(b"{\"a\":1}")),
            Ok(Some(Payload::Json(serde_json::json!({"a": 1}))))
        );
        let text = HeaderValue::from_static("Text/Plain");
        assert_eq!(
            reply_payload(Some(&text), Bytes::from_static(b"hi")),
            Ok(Some(Payload::Text(Arc::from("hi"))))
        );
        assert_eq!(
            reply_payload(None, Bytes::from_static(b"\x00\x01")),
            Ok(Some(Payload::Binary(Bytes::from_static(b"\x00\x01"))))
        );
        assert_eq!(reply_payload(Some(&json), Bytes::new()), Ok(None));
        assert!(reply_payload(Some(&json), Bytes::from_static(b"{")).is_err());
    }

    #[test]
    fn connect_reply_treats_blank_values_as_none() {
        assert_eq!(connect_reply(b""), Ok(ConnectResponse::default()));
        assert_eq!(
            connect_reply(br#"{"userId":"","groups":["app:a"],"subprotocol":""}"#),
            Ok(ConnectResponse {
                groups: Some(vec!["app:a".into()]),
                ..ConnectResponse::default()
            })
        );
        assert!(connect_reply(b"[1]").is_err());
    }
}
