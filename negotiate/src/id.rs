//! Connection ids and tokens: 16 random bytes, base64url without padding (22 characters).
//!
//! URL-safe matters: the JavaScript client appends `id=<token>` without percent-encoding it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;
use std::sync::Arc;

/// A 128-bit random identifier. Anonymous connections act as bearer capabilities, so the
/// `Display` form is redacted: only `.as_str()` yields the full value.
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
}

/// Logs show the first six characters: enough to follow a connection, not enough to use it.
impl fmt::Display for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..6).unwrap_or(&self.0);
        write!(f, "{shown}…")
    }
}

impl fmt::Debug for RandomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RandomId({self})")
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
    fn display_is_redacted() {
        let id = RandomId::generate();
        let shown = id.to_string();
        assert!(!shown.contains(id.as_str()));
        assert!(shown.starts_with(&id.as_str()[..6]));
    }
}
