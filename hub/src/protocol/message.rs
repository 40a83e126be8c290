//! The hub messages of the SignalR protocol, independent of how they are encoded.

use super::HubValue;
use std::collections::BTreeMap;

/// `headers` on invocation messages: string to string, usually empty (an empty map allocates
/// nothing).
pub type Headers = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1.
    Invocation(Invocation),
    /// Type 2.
    StreamItem(StreamItem),
    /// Type 3.
    Completion(Completion),
    /// Type 4: an [`Invocation`] whose result is a stream; `invocation_id` is always set.
    StreamInvocation(Invocation),
    /// Type 5.
    CancelInvocation {
        headers: Headers,
        invocation_id: String,
    },
    /// Type 6.
    Ping,
    /// Type 7.
    Close(Close),
    /// Type 8 (stateful reconnect).
    Ack { sequence_id: u64 },
    /// Type 9 (stateful reconnect).
    Sequence { sequence_id: u64 },
}

impl HubMessage {
    /// Stateful reconnect numbers, buffers and replays these (types 1-5); never Ping, Close,
    /// Ack or Sequence.
    pub fn is_sequenced(&self) -> bool {
        matches!(
            self,
            Self::Invocation(_)
                | Self::StreamItem(_)
                | Self::Completion(_)
                | Self::StreamInvocation(_)
                | Self::CancelInvocation { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub headers: Headers,
    /// `None` for a non-blocking invocation, which gets no reply of any kind.
    pub invocation_id: Option<String>,
    pub target: String,
    pub arguments: Vec<HubValue>,
    pub stream_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamItem {
    pub headers: Headers,
    pub invocation_id: String,
    pub item: HubValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub headers: Headers,
    pub invocation_id: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Neither result nor error: the end of a stream.
    Void,
    /// A result, `null` for a method that returns nothing (as .NET writes it).
    Result(HubValue),
    Error(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Close {
    pub error: Option<String>,
    /// The client may reconnect (automatic reconnect applies).
    pub allow_reconnect: bool,
}

impl Completion {
    pub fn result(invocation_id: String, value: HubValue) -> Self {
        Self {
            headers: Headers::new(),
            invocation_id,
            outcome: Outcome::Result(value),
        }
    }

    pub fn error(invocation_id: String, error: String) -> Self {
        Self {
            headers: Headers::new(),
            invocation_id,
            outcome: Outcome::Error(error),
        }
    }
}
