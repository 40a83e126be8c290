//! The loader's Web PubSub client: Azure's JSON subprotocols as rthub's `/api/_rt/ws` speaks
//! them (docs: `shared/reference/webpubsub-protocol.md`).
//!
//! A client gets its URL from `GET /api/_rt/ws` with the server key, as an app server would
//! hand one to a browser, opens the WebSocket with one subprotocol, waits for the
//! `system/connected` greeting and joins with `joinGroup` + `ackId`, waiting for the ack.
//! Deliveries are `{"type":"message","from":"group",...,"data":"ts:…"}`: the payload's stamp
//! is found by the same byte scan as every other protocol's. On the reliable subprotocol each
//! message also carries a `sequenceId`, which members find in the raw bytes too and ack with
//! `sequenceAck` at most once a second, as `@azure/web-pubsub-client` does.

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;

/// The plain JSON subprotocol: no sequence ids, no recovery.
pub const JSON: &str = "json.webpubsub.azure.v1";
/// The reliable JSON subprotocol (the official client's default).
pub const RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

/// Where a client asks for its URL.
pub const URL_PATH: &str = "/api/_rt/ws";

/// The client's keep-alive (the official client pings every 20 s; more often here is harmless).
pub const PING: &str = r#"{"type":"ping"}"#;

/// How often at most a member acks what it received (the official client's timer).
pub const ACK_INTERVAL: Duration = Duration::from_secs(1);

/// The server has no Web PubSub endpoint (`GET /api/_rt/ws` answered 404): an rthub from
/// before it, which a scenario skips rather than counts as broken.
#[derive(Debug)]
pub struct NoEndpoint;

impl std::fmt::Display for NoEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "this rthub has no Web PubSub endpoint (GET {URL_PATH} answered 404)"
        )
    }
}

impl std::error::Error for NoEndpoint {}

/// What the server sends, as far as the loader needs it. Unknown types and fields are
/// ignored, as the official client ignores them.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    System {
        event: String,
        connection_id: Option<String>,
        user_id: Option<String>,
        reconnection_token: Option<String>,
        message: Option<String>,
    },
    Message {
        from: String,
        group: Option<String>,
        data_type: Option<String>,
        #[serde(default)]
        data: serde_json::Value,
        sequence_id: Option<u64>,
    },
    Ack {
        ack_id: u64,
        success: bool,
        error: Option<AckError>,
    },
    Pong,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct AckError {
    pub name: String,
    #[serde(default)]
    pub message: String,
}

/// Parses one text frame from the server.
pub fn parse(frame: &[u8]) -> anyhow::Result<ServerMessage> {
    serde_json::from_slice(frame).with_context(|| {
        format!(
            "not a Web PubSub message: {}",
            String::from_utf8_lossy(frame)
        )
    })
}

/// The `connected` greeting's connection id, or why the frame is not that greeting.
pub fn connected(frame: &[u8]) -> anyhow::Result<String> {
    match parse(frame)? {
        ServerMessage::System {
            event,
            connection_id: Some(id),
            ..
        } if event == "connected" => Ok(id),
        ServerMessage::System {
            event,
            message: Some(message),
            ..
        } if event == "disconnected" => bail!("disconnected before connected: {message}"),
        other => bail!("expected system/connected first, got {other:?}"),
    }
}

/// `Some(Ok)` when `frame` acks `ack_id` successfully, `Some(Err)` when it refuses it, `None`
/// when it is something else.
pub fn ack_of(frame: &[u8], ack_id: u64) -> Option<anyhow::Result<()>> {
    match parse(frame).ok()? {
        ServerMessage::Ack {
            ack_id: id,
            success,
            error,
        } if id == ack_id => Some(if success {
            Ok(())
        } else {
            let error = error.map_or_else(
                || "no error given".to_owned(),
                |e| format!("{}: {}", e.name, e.message),
            );
            Err(anyhow!("ack {ack_id} refused: {error}"))
        }),
        _ => None,
    }
}

pub fn join_group(group: &str, ack_id: u64) -> String {
    serde_json::json!({"type": "joinGroup", "group": group, "ackId": ack_id}).to_string()
}

/// A fire-and-forget `sendToGroup` of a text payload (no `ackId`, as the official client's
/// `fireAndForget` option sends it; the sender is not a member, so `noEcho` does not matter).
pub fn send_to_group(group: &str, payload: &str) -> String {
    serde_json::json!({"type": "sendToGroup", "group": group, "dataType": "text", "data": payload})
        .to_string()
}

pub fn sequence_ack(sequence_id: u64) -> String {
    format!(r#"{{"type":"sequenceAck","sequenceId":{sequence_id}}}"#)
}

/// Asks rthub for a client URL with its server key (`text/plain`: the URL itself).
pub async fn client_url(http: &reqwest::Client, addr: &str, key: &str) -> anyhow::Result<String> {
    let response = http
        .get(format!("http://{addr}{URL_PATH}"))
        .header("x-apikey", key)
        .send()
        .await
        .context("GET the Web PubSub client URL")?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(NoEndpoint.into());
    }
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("GET {URL_PATH} answered {status}: {body}");
    }
    let url = body.trim();
    if !url.starts_with("ws://") {
        bail!("GET {URL_PATH} answered {url:?}, not a ws:// URL");
    }
    Ok(url.to_owned())
}

const SEQUENCE_ID: &[u8] = b"\"sequenceId\":";
/// A u64 has at most 20 digits.
const MAX_DIGITS: usize = 20;

/// The highest complete `"sequenceId":<digits>` in `bytes` (digits followed by a non-digit;
/// one cut by the end of a read is left for the next, see [`incomplete_sequence_id_at`]).
pub fn highest_sequence_id(bytes: &[u8]) -> Option<u64> {
    memchr::memmem::find_iter(bytes, SEQUENCE_ID)
        .filter_map(|at| {
            let digits = &bytes[at + SEQUENCE_ID.len()..];
            let end = digits.iter().position(|b| !b.is_ascii_digit())?;
            std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
        })
        .max()
}

/// Where a `"sequenceId":` cut by the end of `bytes` starts (or `bytes.len()` if none is): a
/// prefix of the key, or the key with digits running to the end.
pub fn incomplete_sequence_id_at(bytes: &[u8]) -> usize {
    let from = bytes.len().saturating_sub(SEQUENCE_ID.len() + MAX_DIGITS);
    let tail = &bytes[from..];
    if let Some(at) = memchr::memmem::rfind(tail, SEQUENCE_ID) {
        let digits = &tail[at + SEQUENCE_ID.len()..];
        if digits.iter().all(u8::is_ascii_digit) {
            return from + at;
        }
    }
    (1..SEQUENCE_ID.len())
        .rev()
        .find(|&n| bytes.ends_with(&SEQUENCE_ID[..n]))
        .map_or(bytes.len(), |n| bytes.len() - n)
}

/// A reliable member's acks: the highest sequence id seen, acked at most once per
/// [`ACK_INTERVAL`] when something new arrived.
#[derive(Debug)]
pub struct Acker {
    highest: u64,
    acked: u64,
    last_sent: Option<Instant>,
}

impl Default for Acker {
    fn default() -> Self {
        Self::new()
    }
}

impl Acker {
    pub fn new() -> Self {
        Self {
            highest: 0,
            acked: 0,
            last_sent: None,
        }
    }

    pub fn saw(&mut self, bytes: &[u8]) {
        if let Some(id) = highest_sequence_id(bytes) {
            self.highest = self.highest.max(id);
        }
    }

    /// The id to ack now, if one is due.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self.highest <= self.acked {
            return None;
        }
        if self
            .last_sent
            .is_some_and(|at| now.duration_since(at) < ACK_INTERVAL)
        {
            return None;
        }
        self.acked = self.highest;
        self.last_sent = Some(now);
        Some(self.highest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connected_greeting_gives_the_connection_id() {
        let reliable = br#"{"type":"system","event":"connected","userId":null,"connectionId":"abc","reconnectionToken":"tok"}"#;
        assert_eq!(connected(reliable).unwrap(), "abc");
        let plain = br#"{"type":"system","event":"connected","connectionId":"c1"}"#;
        assert_eq!(connected(plain).unwrap(), "c1");
        let gone = br#"{"type":"system","event":"disconnected","message":"Unauthorized"}"#;
        let error = connected(gone).unwrap_err().to_string();
        assert!(error.contains("Unauthorized"), "{error}");
        assert!(connected(br#"{"type":"pong"}"#).is_err());
        assert!(connected(b"not json").is_err());
    }

    #[test]
    fn acks_are_matched_by_id_and_refusals_carry_their_error() {
        assert!(matches!(
            ack_of(br#"{"type":"ack","ackId":1,"success":true}"#, 1),
            Some(Ok(()))
        ));
        assert!(ack_of(br#"{"type":"ack","ackId":2,"success":true}"#, 1).is_none());
        let refused = ack_of(
            br#"{"type":"ack","ackId":1,"success":false,"error":{"name":"Forbidden","message":"private channel"}}"#,
            1,
        );
        let error = refused.unwrap().unwrap_err().to_string();
        assert!(error.contains("Forbidden: private channel"), "{error}");
        assert!(ack_of(br#"{"type":"message","from":"server","data":1}"#, 1).is_none());
    }

    #[test]
    fn group_messages_parse_with_their_sequence_ids() {
        let frame = br#"{"type":"message","from":"group","fromUserId":null,"group":"app:bench","dataType":"text","data":"ts:1764000000123456789|xx","sequenceId":7}"#;
        assert_eq!(
            parse(frame).unwrap(),
            ServerMessage::Message {
                from: "group".into(),
                group: Some("app:bench".into()),
                data_type: Some("text".into()),
                data: serde_json::json!("ts:1764000000123456789|xx"),
                sequence_id: Some(7),
            }
        );
        assert_eq!(
            crate::client::stamps(frame).collect::<Vec<_>>(),
            [1_764_000_000_123_456_789]
        );
        assert_eq!(parse(br#"{"type":"pong"}"#).unwrap(), ServerMessage::Pong);
        assert_eq!(
            parse(br#"{"type":"groupStateUpdate","x":1}"#).unwrap(),
            ServerMessage::Other
        );
    }

    #[test]
    fn client_frames_are_the_protocols_json() {
        let join: serde_json::Value = serde_json::from_str(&join_group("app:bench", 1)).unwrap();
        assert_eq!(
            join,
            serde_json::json!({"type":"joinGroup","group":"app:bench","ackId":1})
        );
        let send: serde_json::Value =
            serde_json::from_str(&send_to_group("app:bench", "ts:1|x")).unwrap();
        assert_eq!(
            send,
            serde_json::json!({"type":"sendToGroup","group":"app:bench","dataType":"text","data":"ts:1|x"})
        );
        let ack: serde_json::Value = serde_json::from_str(&sequence_ack(42)).unwrap();
        assert_eq!(
            ack,
            serde_json::json!({"type":"sequenceAck","sequenceId":42})
        );
        let ping: serde_json::Value = serde_json::from_str(PING).unwrap();
        assert_eq!(ping, serde_json::json!({"type":"ping"}));
    }

    #[test]
    fn sequence_ids_are_found_in_raw_bytes_and_cut_ones_are_kept() {
        // Two frames back to back as they arrive on the socket (header bytes between them).
        let bytes =
            b"\x81\x20{\"data\":\"a\",\"sequenceId\":9}\x81\x20{\"sequenceId\":10,\"data\":\"b\"}";
        assert_eq!(highest_sequence_id(bytes), Some(10));
        assert_eq!(incomplete_sequence_id_at(bytes), bytes.len());
        let cut = b"{\"sequenceId\":11}{\"sequenceId\":12";
        assert_eq!(highest_sequence_id(cut), Some(11));
        assert_eq!(incomplete_sequence_id_at(cut), 18);
        let key_cut = b"{\"sequenceId\":11}{\"sequ";
        assert_eq!(incomplete_sequence_id_at(key_cut), 18);
        assert_eq!(incomplete_sequence_id_at(b"xyz"), 3);
        assert_eq!(highest_sequence_id(b"{\"data\":1}"), None);
    }

    #[test]
    fn rthubs_own_frames_are_read_as_they_are_written() {
        use ::webpubsub::frames::{self, AckError};
        use ::webpubsub::{Subprotocol, WebPubSubEncoder};
        use router::{Encoder, Frame, GroupMessage, Outbound, Payload};

        let greeting = frames::connected(None, "conn-1", Some("token"));
        assert_eq!(connected(&greeting).unwrap(), "conn-1");
        assert!(matches!(ack_of(&frames::ack_ok(1), 1), Some(Ok(()))));
        let refused = frames::ack_error(1, AckError::Forbidden, "private channel");
        let error = ack_of(&refused, 1).unwrap().unwrap_err().to_string();
        assert!(error.contains("Forbidden"), "{error}");
        assert_eq!(parse(&frames::pong()).unwrap(), ServerMessage::Pong);

        let text = crate::client::payload(
            std::time::UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789),
        );
        let message: Outbound =
            GroupMessage::new("app:bench", Payload::Text(text.as_str().into())).into();
        for subprotocol in [Subprotocol::Json, Subprotocol::JsonReliable] {
            let encoder = WebPubSubEncoder::new(subprotocol, "app");
            let bytes = match encoder.encode(&message).unwrap() {
                Frame::Whole(bytes) => bytes,
                Frame::Stamped(stamped) => stamped.stamp(41),
            };
            let reliable = subprotocol == Subprotocol::JsonReliable;
            match parse(&bytes).unwrap() {
                ServerMessage::Message {
                    from,
                    group,
                    data,
                    sequence_id,
                    ..
                } => {
                    assert_eq!(from, "group");
                    assert_eq!(group.as_deref(), Some("app:bench"));
                    assert_eq!(data, serde_json::json!(text));
                    assert_eq!(sequence_id, reliable.then_some(41));
                }
                other => panic!("not a message: {other:?}"),
            }
            assert_eq!(
                crate::client::stamps(&bytes).collect::<Vec<_>>(),
                [1_764_000_000_123_456_789]
            );
            assert_eq!(highest_sequence_id(&bytes), reliable.then_some(41));
            if reliable {
                // A read that ends just after the id's digits keeps them for the next read.
                let cut = &bytes[..bytes.len() - 1];
                assert_eq!(highest_sequence_id(cut), None);
                assert_eq!(
                    incomplete_sequence_id_at(cut),
                    cut.len() - SEQUENCE_ID.len() - 2
                );
            }
        }
    }

    #[test]
    fn acks_go_out_at_most_once_a_second_and_only_for_news() {
        let start = Instant::now();
        let mut acker = Acker::new();
        assert_eq!(acker.due(start), None);
        acker.saw(b"{\"sequenceId\":3}");
        assert_eq!(acker.due(start), Some(3));
        acker.saw(b"{\"sequenceId\":4}");
        assert_eq!(acker.due(start + Duration::from_millis(500)), None);
        assert_eq!(acker.due(start + ACK_INTERVAL), Some(4));
        assert_eq!(acker.due(start + ACK_INTERVAL * 3), None);
        // A repeat of an old id is no news.
        acker.saw(b"{\"sequenceId\":2}");
        assert_eq!(acker.due(start + ACK_INTERVAL * 4), None);
    }
}
