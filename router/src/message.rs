//! What the router carries: protocol-neutral messages. Each protocol's encoder decides the
//! bytes (SignalR's `message` and `change` invocations, Web PubSub's `{type: "message"}`,
//! `/realtime`'s RestDB events); the application only says what happened.

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// A message's body as its sender gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Payload {
    Json(Value),
    Text(Arc<str>),
    Binary(Bytes),
}

impl Payload {
    /// Web PubSub's `dataType` for this payload.
    pub fn data_type(&self) -> &'static str {
        match self {
            Payload::Json(_) => "json",
            Payload::Text(_) => "text",
            Payload::Binary(_) => "binary",
        }
    }

    /// The payload as a JSON value, for protocols whose messages are JSON: text as a string,
    /// binary as standard base64 (what .NET's serializers make of `byte[]`).
    pub fn to_json(&self) -> Value {
        match self {
            Payload::Json(value) => value.clone(),
            Payload::Text(text) => Value::String(text.to_string()),
            Payload::Binary(bytes) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
}

/// A message sent to a channel (PRODUCT.md section 5): by a connection, or by the server when
/// `from_connection_id` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMessage {
    pub group: Arc<str>,
    pub data: Payload,
    pub from_user_id: Option<Arc<str>>,
    pub from_connection_id: Option<Arc<str>>,
}

impl GroupMessage {
    /// A message from the server (no sender connection, no user).
    pub fn new(group: impl Into<Arc<str>>, data: Payload) -> Self {
        Self {
            group: group.into(),
            data,
            from_user_id: None,
            from_connection_id: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// One committed write of a collection (PRODUCT.md section 5, "Change").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeMessage {
    pub collection: Arc<str>,
    pub operation: Operation,
    /// The item's id (a UUID, hyphenated).
    pub id: Arc<str>,
    /// The item after the write; its last state on delete.
    pub data: Value,
    /// The position in the change log.
    pub seq: i64,
    /// The commit time, RFC 3339.
    pub ts: Arc<str>,
}

impl ChangeMessage {
    /// The change as every protocol carries it (SignalR's `change` argument, Web PubSub's
    /// `data`, a `StreamChanges` item): `{collection, operation, id, data, seq, ts}`.
    pub fn to_json(&self) -> Value {
        let mut object = serde_json::Map::with_capacity(6);
        object.insert(
            "collection".into(),
            Value::String(self.collection.to_string()),
        );
        object.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        object.insert("id".into(), Value::String(self.id.to_string()));
        object.insert("data".into(), self.data.clone());
        object.insert("seq".into(), Value::from(self.seq));
        object.insert("ts".into(), Value::String(self.ts.to_string()));
        Value::Object(object)
    }
}

/// An application event with a name (`/realtime`'s `publish`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomEvent {
    pub name: Arc<str>,
    pub data: Payload,
    /// Its position in the stream it was published on, as the protocol shows it to clients
    /// for resuming (`/realtime`'s `id:`).
    pub id: Arc<str>,
}

/// A call of a client method with arguments, for protocols that have them (SignalR); others
/// skip it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub target: Cow<'static, str>,
    pub arguments: Vec<Value>,
}

impl Invocation {
    pub fn new(target: impl Into<Cow<'static, str>>, arguments: Vec<Value>) -> Self {
        Self {
            target: target.into(),
            arguments,
        }
    }
}

/// A message from the server to connections it names (everyone, a user, a connection), not
/// through a group: Web PubSub's `from: "server"` messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectMessage {
    pub data: Payload,
}

/// The server ends connections: each protocol writes its last words (SignalR's `Close`, Web
/// PubSub's `system/disconnected`) and the connection closes for good, without recovery.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Disconnect {
    pub reason: Option<Arc<str>>,
}

/// Everything the router delivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outbound {
    Group(GroupMessage),
    Change(ChangeMessage),
    Event(CustomEvent),
    Invocation(Invocation),
    Direct(DirectMessage),
    /// Close the recipients; its frame, if the protocol has one, is their last.
    Close(Disconnect),
}

impl From<GroupMessage> for Outbound {
    fn from(message: GroupMessage) -> Self {
        Outbound::Group(message)
    }
}

impl From<ChangeMessage> for Outbound {
    fn from(message: ChangeMessage) -> Self {
        Outbound::Change(message)
    }
}

impl From<CustomEvent> for Outbound {
    fn from(message: CustomEvent) -> Self {
        Outbound::Event(message)
    }
}

impl From<Invocation> for Outbound {
    fn from(message: Invocation) -> Self {
        Outbound::Invocation(message)
    }
}
