//! Deserialising Rust types from a [`HubValue`] (method parameters), and a [`HubValue`] from
//! other formats.

use super::time::{Timestamp, TIMESTAMP_TOKEN};
use super::{HubMap, HubValue};
use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, Deserializer, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use std::fmt;

/// The newtype name by which a `HubValue` target asks a `HubValue` deserializer for itself,
/// binary and timestamps included (any other deserializer just gives its content).
const VALUE_TOKEN: &str = "$hub::HubValue";

/// A value did not fit the type asked for, or a type could not become a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub(crate) String);

impl de::Error for ValueError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        ValueError(message.to_string())
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = HubValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<HubValue, E> {
        Ok(HubValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<HubValue, E> {
        Ok(v.into())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<HubValue, E> {
        Ok(v.into())
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<HubValue, E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(n), _) => Ok(n.into()),
            (_, Ok(n)) => Ok(n.into()),
            _ => Err(E::custom(format!("the integer {v} does not fit 64 bits"))),
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<HubValue, E> {
        u64::try_from(v)
            .map(HubValue::from)
            .map_err(|_| E::custom(format!("the integer {v} does not fit 64 bits")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<HubValue, E> {
        Ok(HubValue::from_f64(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<HubValue, E> {
        Ok(v.into())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<HubValue, E> {
        Ok(v.into())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<HubValue, E> {
        Ok(HubValue::Binary(bytes::Bytes::copy_from_slice(v)))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<HubValue, E> {
        Ok(HubValue::Binary(v.into()))
    }
    fn visit_none<E: de::Error>(self) -> Result<HubValue, E> {
        Ok(HubValue::Null)
    }
    fn visit_unit<E: de::Error>(self) -> Result<HubValue, E> {
        Ok(HubValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<HubValue, D::Error> {
        HubValue::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<HubValue, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<HubValue, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(value) = seq.next_element()? {
            values.push(value);
        }
        Ok(HubValue::Array(values))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<HubValue, A::Error> {
        let mut values = HubMap::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((key, value)) = map.next_entry::<String, HubValue>()? {
            values.insert(key, value);
        }
        Ok(HubValue::Map(values))
    }
    /// Only a `HubValue` deserializer calls this: a timestamp (see [`Raw`]).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<HubValue, A::Error> {
        use de::VariantAccess;
        let (name, variant): (String, _) = data.variant()?;
        if name != TIMESTAMP_TOKEN {
            return Err(de::Error::custom("an enum is not a hub value"));
        }
        match variant.newtype_variant::<HubValue>()? {
            HubValue::Binary(data) => Timestamp::from_ext(&data)
                .map(HubValue::Timestamp)
                .map_err(de::Error::custom),
            _ => Err(de::Error::custom("a timestamp without its data")),
        }
    }
}

impl<'de> Deserialize<'de> for HubValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(VALUE_TOKEN, ValueVisitor)
    }
}

impl<'de> IntoDeserializer<'de, ValueError> for HubValue {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// A `HubValue` handed to a `HubValue` target: binary as bytes, a timestamp as an enum only
/// [`ValueVisitor`] knows, so neither goes through its JSON text.
struct Raw(HubValue);

impl<'de> Deserializer<'de> for Raw {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            HubValue::Binary(bytes) => visitor.visit_byte_buf(bytes.into()),
            HubValue::Timestamp(time) => visitor.visit_enum(Enum {
                variant: TIMESTAMP_TOKEN.to_owned(),
                value: Some(HubValue::Binary(time.to_ext96().to_vec().into())),
            }),
            other => other.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> Deserializer<'de> for HubValue {
    type Error = ValueError;

    /// Binary and timestamps as their JSON text: what a `serde_json::Value` target gets.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            HubValue::Null => visitor.visit_unit(),
            HubValue::Bool(b) => visitor.visit_bool(b),
            HubValue::Number(n) => n
                .deserialize_any(visitor)
                .map_err(|e| ValueError(e.to_string())),
            HubValue::String(s) => visitor.visit_string(s),
            HubValue::Binary(bytes) => visitor.visit_string(super::base64(&bytes)),
            HubValue::Timestamp(time) => visitor.visit_string(time.to_string()),
            HubValue::Array(values) => {
                let mut seq = SeqDeserializer::new(values.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            HubValue::Map(map) => {
                let mut entries = MapDeserializer::new(map.into_iter().map(|(k, v)| (Key(k), v)));
                let value = visitor.visit_map(&mut entries)?;
                entries.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            HubValue::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match (name, self) {
            (VALUE_TOKEN, value) => visitor.visit_newtype_struct(Raw(value)),
            (TIMESTAMP_TOKEN, HubValue::Timestamp(time)) => visitor.visit_bytes(&time.to_ext96()),
            (_, value) => visitor.visit_newtype_struct(value),
        }
    }

    /// `Vec<u8>` asks for a sequence: binary gives its bytes, and so does a base64 string (as
    /// .NET's JSON reads a `byte[]`).
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        let bytes = match self {
            HubValue::Binary(bytes) => bytes.to_vec(),
            HubValue::String(text) => match decode_base64(&text) {
                Some(bytes) => bytes,
                None => return visitor.visit_string(text),
            },
            other => return other.deserialize_any(visitor),
        };
        let mut seq = SeqDeserializer::new(bytes.into_iter());
        let value = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(value)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        self.deserialize_byte_buf(visitor)
    }

    /// `ByteBuf` and `Bytes`: from binary, or from a base64 string.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            HubValue::Binary(bytes) => visitor.visit_byte_buf(bytes.into()),
            HubValue::String(text) => match decode_base64(&text) {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Err(ValueError("the string is not base64".into())),
            },
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self {
            HubValue::String(variant) => visitor.visit_enum(Enum {
                variant,
                value: None,
            }),
            HubValue::Map(map) if map.len() == 1 => {
                let Some((variant, value)) = map.into_iter().next() else {
                    return Err(ValueError("an empty map is not an enum".into()));
                };
                visitor.visit_enum(Enum {
                    variant,
                    value: Some(value),
                })
            }
            _ => Err(ValueError(
                "an enum is a string or a map with one entry".into(),
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string unit unit_struct
        tuple tuple_struct map struct identifier
    }
}

/// A map key: text, which integer and boolean keys are parsed from (as `serde_json` reads a
/// `HashMap<u32, T>`).
struct Key(String);

impl<'de> IntoDeserializer<'de, ValueError> for Key {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

macro_rules! parsed_keys {
    ($($method:ident => $visit:ident: $t:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            match self.0.parse::<$t>() {
                Ok(parsed) => visitor.$visit(parsed),
                Err(_) => visitor.visit_string(self.0),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for Key {
    type Error = ValueError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_string(self.0)
    }

    parsed_keys!(deserialize_bool => visit_bool: bool, deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16, deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64, deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128, deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64);

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_enum(Enum {
            variant: self.0,
            value: None,
        })
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf option unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

/// An enum variant, with its content if it has one (`{"Variant": content}`).
struct Enum {
    variant: String,
    value: Option<HubValue>,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = ValueError;
    type Variant = Variant;

    fn variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Variant), ValueError> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((variant, Variant(self.value)))
    }
}

struct Variant(Option<HubValue>);

impl<'de> de::VariantAccess<'de> for Variant {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.0 {
            None | Some(HubValue::Null) => Ok(()),
            Some(_) => Err(ValueError("a unit variant with content".into())),
        }
    }

    fn newtype_variant_seed<S: de::DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, ValueError> {
        seed.deserialize(self.0.unwrap_or_default())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(value @ HubValue::Array(_)) => value.deserialize_any(visitor),
            _ => Err(ValueError("a tuple variant is an array".into())),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.0 {
            Some(value @ HubValue::Map(_)) => value.deserialize_any(visitor),
            _ => Err(ValueError("a struct variant is a map".into())),
        }
    }
}
