//! Hub protocols: pure codecs between bytes and [`HubMessage`]s. No I/O here.

mod json;
mod message;
mod messagepack;
#[cfg(test)]
mod proptests;
mod text_record;
mod value;

pub use json::JsonHubProtocol;
pub use message::{Close, Completion, Headers, HubMessage, Invocation, Outcome, StreamItem};
pub use messagepack::MessagePackHubProtocol;
pub(crate) use text_record::{find_record, RECORD_SEPARATOR};
pub use value::{HubMap, HubValue, Timestamp, ValueError};

use bytes::{Bytes, BytesMut};
use negotiate::TransferFormat;
use serde_json::Value;

/// A field of an argument object for [`HubProtocol::encode_object_invocation`].
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Value(&'a Value),
    /// Binary data: `bin` in MessagePack, a base64 string in JSON.
    Bytes(&'a [u8]),
}

impl Field<'_> {
    pub fn to_value(&self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Str(text) => Value::String((*text).to_owned()),
            Field::Int(n) => Value::from(*n),
            Field::Value(value) => (*value).clone(),
            Field::Bytes(bytes) => Value::String(value::base64(bytes)),
        }
    }
}

/// A connection-fatal protocol error: the connection gets a `Close` carrying the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("The maximum message size of {limit}B was exceeded.")]
    MessageTooLarge { limit: usize },
    #[error("Error reading JSON: {0}")]
    Json(String),
    #[error("Message is not a JSON object.")]
    NotAnObject,
    #[error("Missing required property '{0}'.")]
    MissingProperty(&'static str),
    #[error("Invalid payload for '{0}'.")]
    InvalidProperty(&'static str),
    #[error("The 'error' and 'result' properties are mutually exclusive.")]
    ErrorAndResult,
    #[error("Text frames must be valid UTF-8.")]
    InvalidUtf8,
    #[error("Error reading MessagePack: {0}")]
    MessagePack(String),
}

/// The outcome of looking at the front of a connection's input.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Message(HubMessage),
    /// A whole message of a type this protocol version does not know: skipped, as .NET does.
    Unknown,
    /// No whole message yet.
    Incomplete,
}

/// A hub protocol (`json`, `messagepack`). Implementations are stateless and shared.
pub trait HubProtocol: Send + Sync + 'static {
    /// The name clients put in the handshake.
    fn name(&self) -> &'static str;
    /// The highest version of it this server speaks.
    fn version(&self) -> u32;
    fn transfer_format(&self) -> TransferFormat;
    /// Take one message off the front of `input` if a whole one is there. Messages larger than
    /// `limit` bytes are errors, also before they are complete.
    fn decode(&self, input: &mut BytesMut, limit: usize) -> Result<Decoded, ProtocolError>;
    /// Append one framed message to `out`.
    fn encode_message(&self, message: &HubMessage, out: &mut Vec<u8>);
    /// Append one framed Invocation built from borrowed parts (the fan-out path: no copies of
    /// the arguments).
    fn encode_invocation(&self, target: &str, arguments: &[Value], out: &mut Vec<u8>);
    /// Append one framed Invocation whose single argument is an object of borrowed fields,
    /// written straight into the frame: the same bytes as [`Self::encode_invocation`] with that
    /// object as a `Value`, without building one (the router's messages take this path).
    /// The default goes through [`Self::encode_invocation`], where binary is base64 text.
    fn encode_object_invocation(
        &self,
        target: &str,
        argument: &[(&str, Field<'_>)],
        out: &mut Vec<u8>,
    ) {
        let object = argument
            .iter()
            .map(|(key, field)| ((*key).to_owned(), field.to_value()))
            .collect();
        self.encode_invocation(target, &[Value::Object(object)], out);
    }

    fn to_bytes(&self, message: &HubMessage) -> Bytes {
        let mut out = Vec::with_capacity(64);
        self.encode_message(message, &mut out);
        Bytes::from(out)
    }
}
