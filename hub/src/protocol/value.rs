//! [`HubValue`]: the arguments, stream items and results of hub messages, as MessagePack has
//! them. JSON has no binary and no time; MessagePack has both (`bin`, the timestamp extension),
//! and a value that went through JSON shapes would reach a MessagePack client as an array of
//! numbers and a string. This type keeps them, and maps them to JSON as ASP.NET Core does.
//!
//! - To JSON ([`HubValue::to_json`], and [`Serialize`] into human-readable serializers):
//!   binary as standard base64, a timestamp as RFC 3339 UTC with .NET's trimmed fraction
//!   (`"2023-11-14T22:13:20Z"`, `"…:20.1234567Z"`; 9 digits when the nanoseconds are not whole
//!   100 ns ticks, and a signed 6-digit year outside 0000–9999, as JavaScript writes it).
//! - Into Rust types (`HubValue` is a [`serde::Deserializer`]): everything as `serde_json::Value`
//!   did, plus `Vec<u8>`, `serde_bytes::ByteBuf` and `bytes::Bytes` from binary or from a base64
//!   string (what .NET's JSON reads into `byte[]`), and `chrono::DateTime` from a timestamp or an
//!   ISO string. A `serde_json::Value` parameter gets the JSON mapping, and so do types serde
//!   buffers first (`#[serde(untagged)]`, `#[serde(flatten)]`): they see binary as base64 text.
//! - From Rust types ([`HubValue::from_serialize`], what results and stream items go through):
//!   `serialize_bytes` (`Bytes`, `ByteBuf`) and non-empty `Vec<u8>` (a sequence of `u8`s) become
//!   binary, [`Timestamp`] a timestamp, everything else what `serde_json::to_value` makes.

use bytes::Bytes;
use indexmap::IndexMap;
use serde_json::Number;
use std::fmt;

mod de;
mod ser;
mod time;

pub use de::ValueError;
pub use time::Timestamp;

/// Map entries in their order on the wire (as `serde_json` keeps them in this workspace).
pub type HubMap = IndexMap<String, HubValue>;

/// A hub argument, stream item or result.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HubValue {
    #[default]
    Null,
    Bool(bool),
    /// Integers of 64 bits of either sign, and finite floats (NaN and infinities have no JSON
    /// form and are read as `Null`, as `JSON.stringify` writes them).
    Number(Number),
    String(String),
    /// MessagePack `bin`; base64 in JSON.
    Binary(Bytes),
    /// The MessagePack timestamp extension (type −1); ISO 8601 in JSON.
    Timestamp(Timestamp),
    Array(Vec<HubValue>),
    /// String keys only: MessagePack integer keys are read as their decimal text (as
    /// `System.Text.Json` writes a `Dictionary<int, T>`); other keys are an error.
    Map(HubMap),
}

impl HubValue {
    /// A float as a value: `Null` for NaN and infinities, which JSON cannot carry.
    pub fn from_f64(value: f64) -> Self {
        Number::from_f64(value).map_or(Self::Null, Self::Number)
    }

    /// Serialise `value` as a hub value (see the module docs for what becomes binary).
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, ValueError> {
        value.serialize(ser::ValueSerializer::default())
    }

    /// Deserialise a Rust type from this value (see the module docs).
    pub fn deserialize_into<T: serde::de::DeserializeOwned>(self) -> Result<T, ValueError> {
        T::deserialize(self)
    }

    /// The JSON form: binary as base64, timestamps as ISO 8601 strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(s) => Value::String(s.clone()),
            Self::Binary(bytes) => Value::String(base64(bytes)),
            Self::Timestamp(time) => Value::String(time.to_string()),
            Self::Array(values) => Value::Array(values.iter().map(Self::to_json).collect()),
            Self::Map(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Binary(bytes) => Some(bytes),
            _ => None,
        }
    }

    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match self {
            Self::Timestamp(time) => Some(*time),
            _ => None,
        }
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl From<serde_json::Value> for HubValue {
    fn from(value: serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => Self::Number(n),
            Value::String(s) => Self::String(s),
            Value::Array(values) => Self::Array(values.into_iter().map(Self::from).collect()),
            Value::Object(map) => Self::Map(
                map.into_iter()
                    .map(|(key, value)| (key, Self::from(value)))
                    .collect(),
            ),
        }
    }
}

impl From<HubValue> for serde_json::Value {
    fn from(value: HubValue) -> Self {
        use serde_json::Value;
        match value {
            HubValue::Null => Value::Null,
            HubValue::Bool(b) => Value::Bool(b),
            HubValue::Number(n) => Value::Number(n),
            HubValue::String(s) => Value::String(s),
            HubValue::Array(values) => Value::Array(values.into_iter().map(Value::from).collect()),
            HubValue::Map(map) => Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key, Value::from(value)))
                    .collect(),
            ),
            other => other.to_json(),
        }
    }
}

macro_rules! from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for HubValue {
            fn from(n: $t) -> Self {
                Self::Number(n.into())
            }
        }
    )*};
}

from_number!(i8, i16, i32, i64, u8, u16, u32, u64);

impl From<f64> for HubValue {
    fn from(value: f64) -> Self {
        Self::from_f64(value)
    }
}

impl From<bool> for HubValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<&str> for HubValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for HubValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<Bytes> for HubValue {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for HubValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes.into())
    }
}

impl From<Timestamp> for HubValue {
    fn from(time: Timestamp) -> Self {
        Self::Timestamp(time)
    }
}

impl From<Vec<HubValue>> for HubValue {
    fn from(values: Vec<HubValue>) -> Self {
        Self::Array(values)
    }
}

static NULL: HubValue = HubValue::Null;

impl std::ops::Index<&str> for HubValue {
    type Output = HubValue;
    /// A map's entry, `Null` when there is none (as `serde_json::Value` indexes).
    fn index(&self, key: &str) -> &HubValue {
        match self {
            Self::Map(map) => map.get(key).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl std::ops::Index<usize> for HubValue {
    type Output = HubValue;
    /// An array's element, `Null` when there is none.
    fn index(&self, index: usize) -> &HubValue {
        match self {
            Self::Array(values) => values.get(index).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

impl fmt::Display for HubValue {
    /// The JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_json(), f)
    }
}

#[cfg(test)]
mod tests;
