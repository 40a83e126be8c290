//! Serialising into a [`HubValue`] (what method results and stream items go through), and
//! serialising a [`HubValue`] into other formats (base64 and ISO text for human-readable ones).

use super::time::{Timestamp, TIMESTAMP_TOKEN};
use super::{HubMap, HubValue, ValueError};
use serde::ser::{self, Impossible, Serialize, Serializer};
use std::cell::Cell;

/// The newtype name by which binary data tells the hub value serializer what it is.
const BINARY_TOKEN: &str = "$hub::Binary";

/// What binary serialises inside its newtype: base64 for human-readable formats, bytes for the
/// others.
struct BinaryWire<'a>(&'a [u8]);

impl Serialize for BinaryWire<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&super::base64(self.0))
        } else {
            serializer.serialize_bytes(self.0)
        }
    }
}

impl Serialize for HubValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            HubValue::Null => serializer.serialize_unit(),
            HubValue::Bool(b) => serializer.serialize_bool(*b),
            HubValue::Number(n) => n.serialize(serializer),
            HubValue::String(s) => serializer.serialize_str(s),
            HubValue::Binary(bytes) => {
                serializer.serialize_newtype_struct(BINARY_TOKEN, &BinaryWire(bytes))
            }
            HubValue::Timestamp(time) => time.serialize(serializer),
            HubValue::Array(values) => serializer.collect_seq(values),
            HubValue::Map(map) => serializer.collect_map(map),
        }
    }
}

/// Serialises any `Serialize` into a [`HubValue`]. Human-readable, as `serde_json::to_value`
/// is (so a `Uuid` or an `IpAddr` stays a string), except inside the binary and timestamp
/// newtypes, which it asks for their bytes.
#[derive(Default, Clone, Copy)]
pub(crate) struct ValueSerializer<'a> {
    binary: bool,
    /// Set when the value serialised was a `u8`: a sequence of only those is a `Vec<u8>`,
    /// which .NET writes as `bin` (a `byte[]`).
    byte: Option<&'a Cell<bool>>,
}

fn plain() -> ValueSerializer<'static> {
    ValueSerializer::default()
}

impl ser::Error for ValueError {
    fn custom<T: std::fmt::Display>(message: T) -> Self {
        ValueError(message.to_string())
    }
}

impl<'a> Serializer for ValueSerializer<'a> {
    type Ok = HubValue;
    type Error = ValueError;
    type SerializeSeq = SerializeVec<'a>;
    type SerializeTuple = SerializeVec<'a>;
    type SerializeTupleStruct = SerializeVec<'a>;
    type SerializeTupleVariant = Variant<SerializeVec<'a>>;
    type SerializeMap = SerializeMap;
    type SerializeStruct = SerializeMap;
    type SerializeStructVariant = Variant<SerializeMap>;

    fn is_human_readable(&self) -> bool {
        !self.binary
    }

    fn serialize_bool(self, v: bool) -> Result<HubValue, ValueError> {
        Ok(HubValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<HubValue, ValueError> {
        if let Ok(v) = i64::try_from(v) {
            Ok(v.into())
        } else if let Ok(v) = u64::try_from(v) {
            Ok(v.into())
        } else {
            Err(ValueError(format!("the integer {v} does not fit 64 bits")))
        }
    }
    fn serialize_u8(self, v: u8) -> Result<HubValue, ValueError> {
        if let Some(byte) = self.byte {
            byte.set(true);
        }
        Ok(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<HubValue, ValueError> {
        u64::try_from(v)
            .map(HubValue::from)
            .map_err(|_| ValueError(format!("the integer {v} does not fit 64 bits")))
    }
    fn serialize_f32(self, v: f32) -> Result<HubValue, ValueError> {
        Ok(HubValue::from_f64(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<HubValue, ValueError> {
        Ok(HubValue::from_f64(v))
    }
    fn serialize_char(self, v: char) -> Result<HubValue, ValueError> {
        Ok(HubValue::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<HubValue, ValueError> {
        Ok(v.into())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<HubValue, ValueError> {
        Ok(HubValue::Binary(bytes::Bytes::copy_from_slice(v)))
    }
    fn serialize_none(self) -> Result<HubValue, ValueError> {
        Ok(HubValue::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<HubValue, ValueError> {
        value.serialize(plain())
    }
    fn serialize_unit(self) -> Result<HubValue, ValueError> {
        Ok(HubValue::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<HubValue, ValueError> {
        Ok(HubValue::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<HubValue, ValueError> {
        Ok(variant.into())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<HubValue, ValueError> {
        let binary = ValueSerializer {
            binary: true,
            byte: None,
        };
        match name {
            BINARY_TOKEN => value.serialize(binary),
            TIMESTAMP_TOKEN => match value.serialize(binary)? {
                HubValue::Binary(data) => Timestamp::from_ext(&data)
                    .map(HubValue::Timestamp)
                    .map_err(ValueError),
                other => Ok(other),
            },
            _ => value.serialize(self),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<HubValue, ValueError> {
        let mut map = HubMap::with_capacity(1);
        map.insert(variant.to_owned(), value.serialize(plain())?);
        Ok(HubValue::Map(map))
    }
    fn serialize_seq(self, length: Option<usize>) -> Result<SerializeVec<'a>, ValueError> {
        Ok(SerializeVec {
            values: Vec::with_capacity(length.unwrap_or(0).min(4096)),
            all_bytes: true,
            tuple: false,
            _byte: std::marker::PhantomData,
        })
    }
    fn serialize_tuple(self, length: usize) -> Result<SerializeVec<'a>, ValueError> {
        let mut vec = self.serialize_seq(Some(length))?;
        // `[u8; N]` and `(u8, u8)` are fixed shapes, not .NET's `byte[]`.
        vec.tuple = true;
        Ok(vec)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        length: usize,
    ) -> Result<SerializeVec<'a>, ValueError> {
        self.serialize_tuple(length)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        length: usize,
    ) -> Result<Variant<SerializeVec<'a>>, ValueError> {
        Ok(Variant(variant, self.serialize_tuple(length)?))
    }
    fn serialize_map(self, length: Option<usize>) -> Result<SerializeMap, ValueError> {
        Ok(SerializeMap {
            map: HubMap::with_capacity(length.unwrap_or(0).min(4096)),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, length: usize) -> Result<SerializeMap, ValueError> {
        self.serialize_map(Some(length))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        length: usize,
    ) -> Result<Variant<SerializeMap>, ValueError> {
        Ok(Variant(variant, self.serialize_map(Some(length))?))
    }
}

pub(crate) struct SerializeVec<'a> {
    values: Vec<HubValue>,
    all_bytes: bool,
    tuple: bool,
    _byte: std::marker::PhantomData<&'a ()>,
}

impl SerializeVec<'_> {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let byte = Cell::new(false);
        let value = value.serialize(ValueSerializer {
            binary: false,
            byte: Some(&byte),
        })?;
        self.all_bytes &= byte.get();
        self.values.push(value);
        Ok(())
    }

    fn finish(self) -> HubValue {
        if self.all_bytes && !self.tuple && !self.values.is_empty() {
            let bytes = self.values.iter().filter_map(HubValue::as_i64);
            // Lossless: each came from a `u8`.
            return HubValue::Binary(bytes.map(|b| b as u8).collect::<Vec<u8>>().into());
        }
        HubValue::Array(self.values)
    }
}

impl ser::SerializeSeq for SerializeVec<'_> {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SerializeVec<'_> {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SerializeVec<'_> {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.push(value)
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(self.finish())
    }
}

pub(crate) struct SerializeMap {
    map: HubMap,
    key: Option<String>,
}

impl ser::SerializeMap for SerializeMap {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        self.key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self.key.take().unwrap_or_default();
        self.map.insert(key, value.serialize(plain())?);
        Ok(())
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(HubValue::Map(self.map))
    }
}

impl ser::SerializeStruct for SerializeMap {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.map.insert(key.to_owned(), value.serialize(plain())?);
        Ok(())
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(HubValue::Map(self.map))
    }
}

/// An enum variant with content: `{"Variant": content}`, as `serde_json` writes it.
pub(crate) struct Variant<T>(&'static str, T);

impl<T> Variant<T> {
    fn wrap(name: &'static str, content: HubValue) -> HubValue {
        let mut map = HubMap::with_capacity(1);
        map.insert(name.to_owned(), content);
        HubValue::Map(map)
    }
}

impl ser::SerializeTupleVariant for Variant<SerializeVec<'_>> {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.1.push(value)
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(Self::wrap(self.0, self.1.finish()))
    }
}

impl ser::SerializeStructVariant for Variant<SerializeMap> {
    type Ok = HubValue;
    type Error = ValueError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.1, key, value)
    }
    fn end(self) -> Result<HubValue, ValueError> {
        Ok(Self::wrap(self.0, HubValue::Map(self.1.map)))
    }
}

/// Map keys: strings, and numbers, booleans and characters as their text (as `serde_json`
/// writes them).
struct KeySerializer;

fn key_error() -> ValueError {
    ValueError("a map key must be a string, a number, a boolean or a character".into())
}

macro_rules! text_keys {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<String, ValueError> {
            Ok(v.to_string())
        }
    )*};
}

impl Serializer for KeySerializer {
    type Ok = String;
    type Error = ValueError;
    type SerializeSeq = Impossible<String, ValueError>;
    type SerializeTuple = Impossible<String, ValueError>;
    type SerializeTupleStruct = Impossible<String, ValueError>;
    type SerializeTupleVariant = Impossible<String, ValueError>;
    type SerializeMap = Impossible<String, ValueError>;
    type SerializeStruct = Impossible<String, ValueError>;
    type SerializeStructVariant = Impossible<String, ValueError>;

    text_keys!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_i128: i128, serialize_u8: u8, serialize_u16: u16,
        serialize_u32: u32, serialize_u64: u64, serialize_u128: u128, serialize_f32: f32,
        serialize_f64: f64, serialize_char: char, serialize_str: &str);

    fn serialize_bytes(self, _: &[u8]) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, ValueError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String, ValueError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, ValueError> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, ValueError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, ValueError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, ValueError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, ValueError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, ValueError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Err(key_error())
    }
}
