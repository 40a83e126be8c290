//! Protocol ids, encoders, and the rule that a message is encoded at most once per protocol
//! present among its recipients.

use crate::message::Outbound;
use bytes::Bytes;
use rt_core::{Outbox, PushError, Stamped};
use std::fmt;

/// Names a wire format: every session of one protocol shares its frames. Two encoders with
/// the same id must produce the same bytes (the id, not the encoder's address, is the key,
/// so a per-connection encoder object still shares frames with its peers).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtocolId(&'static str);

impl ProtocolId {
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl serde::Serialize for ProtocolId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// Another node's protocol names (presence lists): interned, since the few protocols there
/// are each need one `'static` name. Only the backplane, which is trusted, sends them.
impl<'de> serde::Deserialize<'de> for ProtocolId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        static NAMES: parking_lot::Mutex<Vec<&'static str>> = parking_lot::Mutex::new(Vec::new());
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut names = NAMES.lock();
        if let Some(known) = names.iter().find(|known| **known == name) {
            return Ok(Self(known));
        }
        if names.len() >= 64 {
            return Err(serde::de::Error::custom("too many protocol names"));
        }
        let leaked: &'static str = Box::leak(name.into_owned().into_boxed_str());
        names.push(leaked);
        Ok(Self(leaked))
    }
}

impl fmt::Debug for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One message in one protocol's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The same bytes for every recipient (a reference-count increment each).
    Whole(Bytes),
    /// Each recipient's sequence id goes inside (Web PubSub reliable): one copy each.
    Stamped(Stamped),
}

impl Frame {
    /// Queue the frame on one recipient's outbox.
    pub fn push_to(&self, outbox: &Outbox) -> Result<(), PushError> {
        match self {
            Frame::Whole(bytes) => outbox.push(bytes.clone()),
            Frame::Stamped(stamped) => outbox.push_stamped(stamped),
        }
    }
}

/// Turns neutral messages into one protocol's frames.
pub trait Encoder: Send + Sync + 'static {
    fn protocol(&self) -> ProtocolId;
    /// `None` when the protocol has no representation for the message: its sessions skip it.
    fn encode(&self, message: &Outbound) -> Option<Frame>;
}

/// The frames of one message, at most one per protocol, with what each delivered. A handful
/// of protocols exist, so a linear scan of a few slots beats hashing.
pub struct EncodeOnce<'a> {
    message: &'a Outbound,
    slots: Vec<Slot>,
    encodings: usize,
}

/// One protocol's frame of a message and its tally.
pub struct Slot {
    pub protocol: ProtocolId,
    pub frame: Option<Frame>,
    /// Recipients whose outbox took the frame.
    pub delivered: u64,
    /// Recipients closed as slow consumers by it.
    pub overflowed: u64,
}

impl Frame {
    /// The bytes one recipient gets (a stamped frame's id digits not counted).
    pub fn len(&self) -> usize {
        match self {
            Frame::Whole(bytes) => bytes.len(),
            Frame::Stamped(stamped) => stamped.head.len() + stamped.tail.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a> EncodeOnce<'a> {
    pub fn new(message: &'a Outbound) -> Self {
        Self {
            message,
            slots: Vec::new(),
            encodings: 0,
        }
    }

    /// The slot of `encoder`'s protocol, encoding the message the first time.
    pub fn slot(&mut self, encoder: &dyn Encoder) -> &mut Slot {
        let protocol = encoder.protocol();
        let index = match self.slots.iter().position(|slot| slot.protocol == protocol) {
            Some(index) => index,
            None => {
                self.encodings += 1;
                self.slots.push(Slot {
                    protocol,
                    frame: encoder.encode(self.message),
                    delivered: 0,
                    overflowed: 0,
                });
                self.slots.len() - 1
            }
        };
        &mut self.slots[index]
    }

    /// The message's frame in `encoder`'s protocol, encoding it the first time.
    pub fn frame(&mut self, encoder: &dyn Encoder) -> Option<&Frame> {
        self.slot(encoder).frame.as_ref()
    }

    pub fn message(&self) -> &'a Outbound {
        self.message
    }

    /// How many times the message was encoded.
    pub fn encodings(&self) -> usize {
        self.encodings
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }
}
