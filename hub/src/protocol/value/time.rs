//! [`Timestamp`]: the MessagePack timestamp extension's range (signed 64-bit seconds and
//! nanoseconds), its three wire forms, and its ISO 8601 text as .NET writes it.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The newtype name by which a [`Timestamp`] tells the hub value serializer what it is (other
/// serializers see a plain newtype).
pub(crate) const TIMESTAMP_TOKEN: &str = "$hub::Timestamp";

/// Seconds and nanoseconds since 1970-01-01T00:00:00Z (UTC, no leap seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    seconds: i64,
    nanoseconds: u32,
}

impl Timestamp {
    /// `None` when `nanoseconds` is a second or more.
    pub fn new(seconds: i64, nanoseconds: u32) -> Option<Self> {
        (nanoseconds < 1_000_000_000).then_some(Self {
            seconds,
            nanoseconds,
        })
    }

    pub fn seconds(&self) -> i64 {
        self.seconds
    }

    pub fn nanoseconds(&self) -> u32 {
        self.nanoseconds
    }

    /// The extension's data in its 32, 64 or 96-bit form (4, 8 or 12 bytes).
    pub fn from_ext(data: &[u8]) -> Result<Self, String> {
        let (seconds, nanoseconds) = match *data {
            [a, b, c, d] => (u32::from_be_bytes([a, b, c, d]).into(), 0),
            [a, b, c, d, e, f, g, h] => {
                let both = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                ((both & ((1 << 34) - 1)) as i64, (both >> 34) as u32)
            }
            [a, b, c, d, e, f, g, h, i, j, k, l] => (
                i64::from_be_bytes([e, f, g, h, i, j, k, l]),
                u32::from_be_bytes([a, b, c, d]),
            ),
            _ => return Err(format!("a timestamp of {} bytes", data.len())),
        };
        Self::new(seconds, nanoseconds)
            .ok_or_else(|| format!("a timestamp with {nanoseconds} nanoseconds"))
    }

    /// The extension's data in the smallest form that holds it, chosen as .NET's
    /// `MessagePackWriter` chooses: 32-bit for whole seconds in `0..2^32`, 64-bit for seconds
    /// in `0..2^34`, 96-bit otherwise.
    pub fn to_ext(&self, out: &mut Vec<u8>) {
        match self.ext_len() {
            4 => out.extend_from_slice(&(self.seconds as u32).to_be_bytes()),
            8 => {
                let both = (u64::from(self.nanoseconds) << 34) | self.seconds as u64;
                out.extend_from_slice(&both.to_be_bytes());
            }
            _ => out.extend_from_slice(&self.to_ext96()),
        }
    }

    /// How many bytes [`Self::to_ext`] writes: 4, 8 or 12.
    pub fn ext_len(&self) -> usize {
        if self.seconds >> 34 != 0 {
            12
        } else if self.nanoseconds == 0 && self.seconds >> 32 == 0 {
            4
        } else {
            8
        }
    }

    /// The 96-bit form, which holds every timestamp.
    pub(crate) fn to_ext96(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..4].copy_from_slice(&self.nanoseconds.to_be_bytes());
        out[4..].copy_from_slice(&self.seconds.to_be_bytes());
        out
    }

    /// An RFC 3339 / ISO 8601 text with any offset (`Z`, `+02:00`).
    pub fn parse(text: &str) -> Option<Self> {
        let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
        Self::new(time.timestamp(), time.timestamp_subsec_nanos())
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(time: chrono::DateTime<chrono::Utc>) -> Self {
        // chrono keeps leap seconds as nanoseconds past 1e9; they fold into the last one.
        Self {
            seconds: time.timestamp(),
            nanoseconds: time.timestamp_subsec_nanos().min(999_999_999),
        }
    }
}

impl TryFrom<Timestamp> for chrono::DateTime<chrono::Utc> {
    /// chrono covers about ±262,000 years; the extension, ±292 billion.
    type Error = Timestamp;

    fn try_from(time: Timestamp) -> Result<Self, Timestamp> {
        chrono::DateTime::from_timestamp(time.seconds, time.nanoseconds).ok_or(time)
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    /// As `System.Text.Json` writes a UTC `DateTime`: the 7-digit fraction with trailing zeros
    /// trimmed (none for whole seconds). Nanoseconds that are not whole 100 ns ticks keep all 9
    /// digits rather than lose them; years outside 0000–9999 are written with a sign and 6
    /// digits (ISO 8601's expanded form, as JavaScript's `toISOString()` writes them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Seconds divided by a day fit any i64 calendar computation below.
        let (year, month, day) = civil_from_days(self.seconds.div_euclid(86_400));
        let time = self.seconds.rem_euclid(86_400);
        if (0..=9999).contains(&year) {
            write!(f, "{year:04}")?;
        } else {
            write!(f, "{}{:06}", if year < 0 { '-' } else { '+' }, year.abs())?;
        }
        write!(
            f,
            "-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            time / 3600,
            time / 60 % 60,
            time % 60
        )?;
        if self.nanoseconds != 0 {
            let digits = format!("{:09}", self.nanoseconds);
            f.write_str(".")?;
            f.write_str(digits.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// What a [`Timestamp`] serialises inside its newtype: ISO text for human-readable formats,
/// the 96-bit extension data for binary ones (and for the hub value serializer, which asks for
/// it that way).
struct Wire(Timestamp);

impl Serialize for Wire {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&self.0)
        } else {
            serializer.serialize_bytes(&self.0.to_ext96())
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(TIMESTAMP_TOKEN, &Wire(*self))
    }
}

struct TimestampVisitor;

impl<'de> Visitor<'de> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp or an RFC 3339 date and time")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
        Timestamp::parse(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }

    fn visit_bytes<E: de::Error>(self, data: &[u8]) -> Result<Timestamp, E> {
        Timestamp::from_ext(data).map_err(E::custom)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<Timestamp, D::Error> {
        inner.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(TIMESTAMP_TOKEN, TimestampVisitor)
    }
}
