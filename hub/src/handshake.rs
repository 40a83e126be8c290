//! The handshake: the client's first record names the hub protocol; the server answers `{}` or
//! an error, before anything else.

use crate::protocol::{find_record, HubProtocol, RECORD_SEPARATOR};
use bytes::{Bytes, BytesMut};
use negotiate::TransferFormat;
use serde::Deserialize;
use std::sync::Arc;

/// The reply to a successful handshake, byte for byte.
pub const SUCCESS: &[u8] = b"{}\x1e";

/// .NET's texts, which clients show to users.
pub const CANCELED: &str = "Handshake was canceled.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    pub protocol: String,
    pub version: i64,
}

#[derive(Deserialize)]
struct Wire {
    protocol: Option<String>,
    version: Option<i64>,
}

/// Take the handshake request off the front of `input` if it is all there.
pub fn parse_request(
    input: &mut BytesMut,
    limit: usize,
) -> Result<Option<HandshakeRequest>, String> {
    let end = match find_record(input, limit) {
        Ok(Some(end)) => end,
        Ok(None) => return Ok(None),
        Err(()) => return Err(CANCELED.to_owned()),
    };
    let record = input.split_to(end + 1);
    let unexpected = |detail: &str| {
        format!("An unexpected error occurred during connection handshake. {detail}")
    };
    let text = std::str::from_utf8(&record[..end])
        .map_err(|_| unexpected("The handshake is not valid UTF-8."))?;
    if !text.trim_start().starts_with('{') {
        return Err(unexpected("The handshake is not a JSON object."));
    }
    let wire: Wire = serde_json::from_str(text).map_err(|e| unexpected(&e.to_string()))?;
    let protocol = wire
        .protocol
        .ok_or_else(|| unexpected("Missing required property 'protocol'."))?;
    let version = wire
        .version
        .ok_or_else(|| unexpected("Missing required property 'version'."))?;
    Ok(Some(HandshakeRequest { protocol, version }))
}

/// Pick the protocol the client asked for, or say why not.
pub fn select_protocol(
    request: &HandshakeRequest,
    protocols: &[Arc<dyn HubProtocol>],
    transport_supports_binary: bool,
) -> Result<Arc<dyn HubProtocol>, String> {
    let protocol = protocols
        .iter()
        .find(|p| p.name() == request.protocol)
        .ok_or_else(|| format!("The protocol '{}' is not supported.", request.protocol))?;
    if request.version < 0 || request.version > i64::from(protocol.version()) {
        return Err(format!(
            "The server does not support version {} of the '{}' protocol.",
            request.version, request.protocol
        ));
    }
    if protocol.transfer_format() == TransferFormat::Binary && !transport_supports_binary {
        return Err(format!(
            "Cannot use the '{}' protocol on the current transport. The transport does not support 'Binary' transfer format.",
            request.protocol
        ));
    }
    Ok(protocol.clone())
}

/// `{"error":"…"}` + 0x1E.
pub fn error_reply(error: &str) -> Bytes {
    let mut out = serde_json::to_vec(&serde_json::json!({ "error": error }))
        .unwrap_or_else(|_| b"{\"error\":\"Handshake failed.\"}".to_vec());
    out.push(RECORD_SEPARATOR);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::JsonHubProtocol;

    fn parse(input: &[u8]) -> (Result<Option<HandshakeRequest>, String>, BytesMut) {
        let mut buffer = BytesMut::from(input);
        let parsed = parse_request(&mut buffer, 32 * 1024);
        (parsed, buffer)
    }

    fn json_only() -> Vec<Arc<dyn HubProtocol>> {
        vec![Arc::new(JsonHubProtocol)]
    }

    #[test]
    fn a_whole_request_is_taken_and_the_rest_kept() {
        let (parsed, rest) = parse(b"{\"protocol\":\"json\",\"version\":1}\x1e{\"type\":6}\x1e");
        assert_eq!(
            parsed,
            Ok(Some(HandshakeRequest {
                protocol: "json".into(),
                version: 1
            }))
        );
        assert_eq!(&rest[..], b"{\"type\":6}\x1e");
    }

    #[test]
    fn a_split_request_waits_for_the_rest() {
        let mut buffer = BytesMut::from(&b"{\"protocol\":\"js"[..]);
        assert_eq!(parse_request(&mut buffer, 1024), Ok(None));
        buffer.extend_from_slice(b"on\",\"version\":1}\x1e");
        assert_eq!(
            parse_request(&mut buffer, 1024).unwrap().unwrap().version,
            1
        );
    }

    #[test]
    fn key_order_whitespace_and_unknown_keys_do_not_matter() {
        let (parsed, _) = parse(b" { \"version\" : 0 , \"x\": [1], \"protocol\":\"json\" }\x1e");
        assert_eq!(parsed.unwrap().unwrap().version, 0);
    }

    #[test]
    fn malformed_requests_are_errors_with_net_texts() {
        for input in [
            &b"nope\x1e"[..],
            b"{\"protocol\":\"json\"}\x1e",
            b"[1]\x1e",
            b"{\xff}\x1e",
        ] {
            let (parsed, _) = parse(input);
            let error = parsed.unwrap_err();
            assert!(
                error.starts_with("An unexpected error occurred during connection handshake."),
                "{error}"
            );
        }
        let mut big = BytesMut::from(&[b' '; 100][..]);
        assert_eq!(parse_request(&mut big, 50), Err(CANCELED.to_owned()));
    }

    #[test]
    fn versions_0_to_2_are_accepted_and_others_refused() {
        let request = |protocol: &str, version| HandshakeRequest {
            protocol: protocol.into(),
            version,
        };
        for version in 0..=2 {
            assert!(select_protocol(&request("json", version), &json_only(), false).is_ok());
        }
        assert_eq!(
            select_protocol(&request("json", 3), &json_only(), true)
                .err()
                .unwrap(),
            "The server does not support version 3 of the 'json' protocol."
        );
        assert_eq!(
            select_protocol(&request("xml", 1), &json_only(), true)
                .err()
                .unwrap(),
            "The protocol 'xml' is not supported."
        );
    }

    #[test]
    fn error_replies_are_json_with_a_separator() {
        assert_eq!(&error_reply("no")[..], b"{\"error\":\"no\"}\x1e");
    }
}
