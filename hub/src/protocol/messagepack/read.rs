//! Reading one MessagePack body: a bounds-checked cursor and hub values (see the parent
//! module's docs).

use super::*;

/// A cursor over one message body. Every read checks the bytes are there; nothing panics.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], ProtocolError> {
        if self.bytes.len() < count {
            return Err(invalid(format!("{what}: the message ends early")));
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(taken)
    }

    pub(super) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ProtocolError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(super) fn marker(&mut self, what: &str) -> Result<Marker, ProtocolError> {
        Ok(Marker::from_u8(self.array::<1>(what)?[0]))
    }

    pub(super) fn peek(&self) -> Option<Marker> {
        self.bytes.first().map(|&b| Marker::from_u8(b))
    }

    pub(super) fn wrong(what: &str, expected: &str, found: Marker) -> ProtocolError {
        invalid(format!(
            "{what}: expected {expected}, found {}",
            describe(found)
        ))
    }

    /// The integer `marker` starts, if it starts one.
    pub(super) fn integer_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<i128>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixPos(n) => n.into(),
            Marker::FixNeg(n) => n.into(),
            Marker::U8 => u8::from_be_bytes(self.array(what)?).into(),
            Marker::U16 => u16::from_be_bytes(self.array(what)?).into(),
            Marker::U32 => u32::from_be_bytes(self.array(what)?).into(),
            Marker::U64 => u64::from_be_bytes(self.array(what)?).into(),
            Marker::I8 => i8::from_be_bytes(self.array(what)?).into(),
            Marker::I16 => i16::from_be_bytes(self.array(what)?).into(),
            Marker::I32 => i32::from_be_bytes(self.array(what)?).into(),
            Marker::I64 => i64::from_be_bytes(self.array(what)?).into(),
            _ => return Ok(None),
        }))
    }

    /// The length that follows a 8/16/32-bit length marker.
    pub(super) fn length(&mut self, bits: u8, what: &str) -> Result<usize, ProtocolError> {
        Ok(match bits {
            8 => u8::from_be_bytes(self.array(what)?).into(),
            16 => u16::from_be_bytes(self.array(what)?).into(),
            _ => u32::from_be_bytes(self.array(what)?) as usize,
        })
    }

    pub(super) fn str_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<String>, ProtocolError> {
        let length = match marker {
            Marker::FixStr(n) => n.into(),
            Marker::Str8 => self.length(8, what)?,
            Marker::Str16 => self.length(16, what)?,
            Marker::Str32 => self.length(32, what)?,
            _ => return Ok(None),
        };
        let text = std::str::from_utf8(self.take(length, what)?)
            .map_err(|_| invalid(format!("{what}: the string is not UTF-8")))?;
        Ok(Some(text.to_owned()))
    }

    pub(super) fn array_len_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<usize>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixArray(n) => n.into(),
            Marker::Array16 => self.length(16, what)?,
            Marker::Array32 => self.length(32, what)?,
            _ => return Ok(None),
        }))
    }

    pub(super) fn map_len_after(
        &mut self,
        marker: Marker,
        what: &str,
    ) -> Result<Option<usize>, ProtocolError> {
        Ok(Some(match marker {
            Marker::FixMap(n) => n.into(),
            Marker::Map16 => self.length(16, what)?,
            Marker::Map32 => self.length(32, what)?,
            _ => return Ok(None),
        }))
    }

    pub(super) fn integer(&mut self, what: &str) -> Result<i128, ProtocolError> {
        let marker = self.marker(what)?;
        self.integer_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "an integer", marker))
    }

    pub(super) fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        let marker = self.marker(what)?;
        self.str_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "a string", marker))
    }

    pub(super) fn nil(&mut self) -> bool {
        if self.peek() == Some(Marker::Null) {
            self.bytes = &self.bytes[1..];
            true
        } else {
            false
        }
    }

    pub(super) fn optional_string(&mut self, what: &str) -> Result<Option<String>, ProtocolError> {
        if self.nil() {
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    pub(super) fn boolean(&mut self, what: &str) -> Result<bool, ProtocolError> {
        match self.marker(what)? {
            Marker::True => Ok(true),
            Marker::False => Ok(false),
            marker => Err(Self::wrong(what, "a boolean", marker)),
        }
    }

    pub(super) fn array_len(&mut self, what: &str) -> Result<usize, ProtocolError> {
        let marker = self.marker(what)?;
        self.array_len_after(marker, what)?
            .ok_or_else(|| Self::wrong(what, "an array", marker))
    }

    /// A capacity to reserve for `count` elements: each takes at least one byte, so a count
    /// larger than what is left is a lie that must not allocate.
    pub(super) fn capacity(&self, count: usize) -> usize {
        count.min(self.bytes.len())
    }

    pub(super) fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let marker = self.marker("headers")?;
        let count = self
            .map_len_after(marker, "headers")?
            .ok_or_else(|| Self::wrong("headers", "a map", marker))?;
        let mut headers = Headers::new();
        for _ in 0..count {
            let key = self.string("a header name")?;
            let value = self.string("a header value")?;
            headers.insert(key, value);
        }
        Ok(headers)
    }

    pub(super) fn values(&mut self, what: &str) -> Result<Vec<HubValue>, ProtocolError> {
        let count = self.array_len(what)?;
        let mut values = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            values.push(self.value(what, 0)?);
        }
        Ok(values)
    }

    pub(super) fn strings(&mut self, what: &str) -> Result<Vec<String>, ProtocolError> {
        let count = self.array_len(what)?;
        let mut strings = Vec::with_capacity(self.capacity(count));
        for _ in 0..count {
            strings.push(self.string(what)?);
        }
        Ok(strings)
    }

    /// Any MessagePack value (see the module documentation for the mapping).
    pub(super) fn value(&mut self, what: &str, depth: usize) -> Result<HubValue, ProtocolError> {
        let marker = self.marker(what)?;
        if let Some(integer) = self.integer_after(marker, what)? {
            // Integers come from at most 64 bits of either sign.
            return Ok(match u64::try_from(integer) {
                Ok(unsigned) => unsigned.into(),
                Err(_) => (integer as i64).into(),
            });
        }
        if let Some(text) = self.str_after(marker, what)? {
            return Ok(HubValue::String(text));
        }
        let nested = depth + 1;
        if let Some(count) = self.array_len_after(marker, what)? {
            if nested > MAX_DEPTH {
                return Err(invalid(format!("{what}: nested deeper than {MAX_DEPTH}")));
            }
            let mut values = Vec::with_capacity(self.capacity(count));
            for _ in 0..count {
                values.push(self.value(what, nested)?);
            }
            return Ok(HubValue::Array(values));
        }
        if let Some(count) = self.map_len_after(marker, what)? {
            if nested > MAX_DEPTH {
                return Err(invalid(format!("{what}: nested deeper than {MAX_DEPTH}")));
            }
            let mut map = HubMap::with_capacity(self.capacity(count));
            for _ in 0..count {
                let key = self.key(what)?;
                let value = self.value(what, nested)?;
                map.insert(key, value);
            }
            return Ok(HubValue::Map(map));
        }
        Ok(match marker {
            Marker::Null => HubValue::Null,
            Marker::True => HubValue::Bool(true),
            Marker::False => HubValue::Bool(false),
            Marker::F32 => HubValue::from_f64(f32::from_be_bytes(self.array(what)?).into()),
            Marker::F64 => HubValue::from_f64(f64::from_be_bytes(self.array(what)?)),
            Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
                let bits = match marker {
                    Marker::Bin8 => 8,
                    Marker::Bin16 => 16,
                    _ => 32,
                };
                let length = self.length(bits, what)?;
                HubValue::Binary(Bytes::copy_from_slice(self.take(length, what)?))
            }
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => {
                let length = match marker {
                    Marker::FixExt1 => 1,
                    Marker::FixExt2 => 2,
                    Marker::FixExt4 => 4,
                    Marker::FixExt8 => 8,
                    Marker::FixExt16 => 16,
                    Marker::Ext8 => self.length(8, what)?,
                    Marker::Ext16 => self.length(16, what)?,
                    _ => self.length(32, what)?,
                };
                let [kind] = self.array::<1>(what)?;
                let data = self.take(length, what)?;
                if kind as i8 != TIMESTAMP {
                    return Err(invalid(format!(
                        "{what}: the extension type {} is not supported",
                        kind as i8
                    )));
                }
                HubValue::Timestamp(
                    Timestamp::from_ext(data).map_err(|e| invalid(format!("{what}: {e}")))?,
                )
            }
            // Everything else was handled above.
            _ => return Err(Self::wrong(what, "a value", marker)),
        })
    }

    /// A map key inside a value: a string, or an integer written as decimal text.
    pub(super) fn key(&mut self, what: &str) -> Result<String, ProtocolError> {
        let marker = self.marker(what)?;
        if let Some(text) = self.str_after(marker, what)? {
            return Ok(text);
        }
        if let Some(integer) = self.integer_after(marker, what)? {
            return Ok(integer.to_string());
        }
        Err(Self::wrong(
            what,
            "a map key that is a string or an integer",
            marker,
        ))
    }
}
