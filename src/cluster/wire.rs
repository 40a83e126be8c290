//! What travels between nodes: envelopes, commands and replies in MessagePack (compact, and
//! binary payloads stay bytes), and the small text header of a group message.

use router::{Command, Envelope, NodeId, Reply};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("malformed cluster message: {0}")]
    Malformed(&'static str),
    #[error("cluster message does not decode: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// What a node's own channel carries.
#[derive(Debug, Serialize, Deserialize)]
pub enum NodeMessage {
    /// A send to this node's connections or users.
    Deliver(Envelope),
    /// Run `command` and answer `from` with `request`.
    Command {
        request: u64,
        from: NodeId,
        command: Command,
    },
    /// The answer to this node's `request`: `None` when the node did not have the connection.
    Reply { request: u64, reply: Option<Reply> },
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these types cannot fail: no maps with non-string keys, no custom errors.
    rmp_serde::to_vec_named(value).unwrap_or_default()
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, WireError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

/// The body of a group message as the stream keeps it: `origin|envelope`, so a node can skip
/// its own messages without decoding them. One buffer: the envelope is encoded after the
/// header, not copied there.
pub fn group_body(origin: NodeId, envelope: &Envelope) -> Vec<u8> {
    let mut body = Vec::with_capacity(128);
    body.extend_from_slice(origin.to_string().as_bytes());
    body.push(b'|');
    // As `encode`: these types always serialize.
    let _ = rmp_serde::encode::write_named(&mut body, envelope);
    body
}

/// A group message as published: `epoch|offset|origin|envelope`.
#[derive(Debug, PartialEq, Eq)]
pub struct GroupFrame<'a> {
    pub epoch: &'a str,
    pub offset: u64,
    pub origin: NodeId,
    pub envelope: &'a [u8],
}

impl<'a> GroupFrame<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (epoch, rest) = split(bytes).ok_or(WireError::Malformed("no epoch"))?;
        let (offset, rest) = split(rest).ok_or(WireError::Malformed("no offset"))?;
        let (origin, envelope) = parse_body(rest)?;
        Ok(Self {
            epoch: std::str::from_utf8(epoch).map_err(|_| WireError::Malformed("epoch"))?,
            offset: number(offset).ok_or(WireError::Malformed("offset"))?,
            origin,
            envelope,
        })
    }
}

/// `origin|envelope` (a stream entry's body).
pub fn parse_body(bytes: &[u8]) -> Result<(NodeId, &[u8]), WireError> {
    let (origin, envelope) = split(bytes).ok_or(WireError::Malformed("no origin"))?;
    let origin = std::str::from_utf8(origin)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(WireError::Malformed("origin"))?;
    Ok((origin, envelope))
}

fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == b'|')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

fn number(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use router::{GroupMessage, Membership, Outbound, Payload, Target};
    use std::sync::Arc;

    #[test]
    fn envelopes_round_trip_with_binary_payloads() {
        let message = GroupMessage::new("room", Payload::Binary(Bytes::from_static(b"\0\xff")));
        let envelope = Envelope {
            origin: NodeId(7),
            target: Target::group("room").excluding(vec!["c1".into()]),
            message: Arc::new(Outbound::Group(message)),
        };
        let bytes = encode(&NodeMessage::Deliver(envelope.clone()));
        let NodeMessage::Deliver(back) = decode(&bytes).unwrap() else {
            panic!("not a delivery")
        };
        assert_eq!(back.origin, envelope.origin);
        assert_eq!(back.target, envelope.target);
        assert_eq!(back.message, envelope.message);
    }

    #[test]
    fn json_payloads_keep_their_numbers() {
        let data = serde_json::json!({"i": -3, "u": u64::MAX, "f": 1.5, "s": "x", "n": null});
        let message = Outbound::Group(GroupMessage::new("g", Payload::Json(data.clone())));
        let back: Outbound = decode(&encode(&message)).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn commands_round_trip() {
        let command = Command::Join {
            connection_id: "c".into(),
            group: "g".into(),
            membership: Membership { read_only: true },
        };
        let bytes = encode(&NodeMessage::Command {
            request: 9,
            from: NodeId(1),
            command: command.clone(),
        });
        match decode(&bytes).unwrap() {
            NodeMessage::Command {
                request: 9,
                from: NodeId(1),
                command: back,
            } => assert_eq!(back, command),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn group_frames_parse_and_refuse_garbage() {
        let envelope = Envelope {
            origin: NodeId(0xff),
            target: Target::All,
            message: Arc::new(Outbound::Group(GroupMessage::new(
                "g|h",
                Payload::Text("a|b".into()),
            ))),
        };
        let mut frame = b"ab12|42|".to_vec();
        frame.extend(group_body(NodeId(0xff), &envelope));
        let parsed = GroupFrame::parse(&frame).unwrap();
        assert_eq!(
            (parsed.epoch, parsed.offset, parsed.origin),
            ("ab12", 42, NodeId(0xff))
        );
        // The envelope after the header, `|` in it or not, is the encoded envelope.
        assert_eq!(parsed.envelope, encode(&envelope).as_slice());
        let back: Envelope = decode(parsed.envelope).unwrap();
        assert_eq!(back.message, envelope.message);
        for bad in [&b""[..], b"e|x|00|", b"e|1|zz|", b"e|1"] {
            assert!(GroupFrame::parse(bad).is_err(), "{bad:?}");
        }
        assert!(decode::<NodeMessage>(b"\xc1").is_err());
    }
}
