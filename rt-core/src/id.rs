//! Connection ids and tokens: 16 random bytes, base64url without padding (22 characters).
//!
//! URL-safe matters: the JavaScript client appends `id=<token>` without percent-encoding it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;
use std::sync::Arc;

/// A 128-bit random identifier.
///
/// `Display` (and so `to_string()`) is the full value: code that asks for the id gets the id.
/// Logs use [`RandomId::redacted`] (or `Debug`), because an anonymous connection's token is a
/// bearer capability and a log line must never carry one whole.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RandomId(Arc<str>);

impl RandomId {
    /// A fresh id from the operating system's CSPRNG (via `rand`'s thread RNG, reseeded from it).
    pub fn generate() -> Self {
        let bytes: [u8; 16] = rand::random();
        Self(URL_SAFE_NO_PAD.encode(bytes).into())
    }

    /// The full id, for the wire. Never log this.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string, for tables keyed by id.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }

    /// The form for logs: `tracing::debug!(connection_id = %id.redacted(), …)`.
    pub fn redacted(&self) -> Redacted<'_> {
        Redacted(&self.0)
    }
}

impl fmt::Display for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `{:?}` is redacted too: debug output of structs that hold ids ends up in logs.
impl fmt::Debug for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RandomId({})", self.redacted())
    }
}

/// An id as logs show it: the first six characters, enough to follow a connection, not
/// enough to use it.
pub struct Redacted<'a>(&'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..6).unwrap_or(self.0);
        write!(f, "{shown}…")
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_22_url_safe_chars_and_distinct() {
        let a = RandomId::generate();
        let b = RandomId::generate();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.as_str().len(), 22);
            assert!(id
                .as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        }
    }

    #[test]
    fn to_string_is_the_id_itself() {
        let id = RandomId::generate();
        assert_eq!(id.to_string(), id.as_str());
        assert_eq!(format!("{id}"), id.as_str());
    }

    #[test]
    fn redacted_and_debug_forms_hide_the_id() {
        let id = RandomId::generate();
        for shown in [id.redacted().to_string(), format!("{id:?}")] {
            assert!(!shown.contains(id.as_str()), "{shown}");
            assert!(shown.contains(&id.as_str()[..6]), "{shown}");
        }
    }
}
