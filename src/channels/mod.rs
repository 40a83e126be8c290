//! Channels: groups with rthub's naming and access rules (PRODUCT.md section 4). The rules live
//! once, in [`ChannelService`]; hub methods ([`hub_methods`]), the REST API ([`rest`]) and the
//! other protocols' endpoints only translate its [`ChannelError`]s into their own refusals.

pub mod hub_methods;
pub mod rest;
mod service;

pub use service::{ChannelService, MemberPage, MemberView, On, Sender};

use std::collections::HashSet;
use std::sync::Arc;

/// A channel name checked against the rules. `wire` is `<api-name>:<channel>`, the group key
/// every protocol shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub wire: String,
    pub kind: ChannelKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Anyone may join, leave and send.
    Regular,
    /// Contains `:` after the prefix: only the server identity manages it.
    Private,
}

/// Why a channel operation was refused. Each surface maps the kind ([`ChannelError::refusal`])
/// to its own wire (a REST status, a hub error completion, a Web PubSub ack) and keeps the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("Channel names are 1-128 characters of letters, digits, '-', '_', '.' and ':'.")]
    InvalidName,
    #[error("Channel '{0}' is not in this application: group names start with '{1}:'.")]
    WrongPrefix(String, String),
    #[error("Channel '{0}' is a collection's: its changes come through Listen or _listen.")]
    Entity(String),
    #[error("Channel '{0}' is private: only the server can join connections to it.")]
    PrivateJoin(String),
    #[error(
        "Channel '{0}' is private: only the server, and connections the server joined to it, may send to it."
    )]
    PrivateSend(String),
    #[error("Channel '{0}' is private: only the server may list its members.")]
    PrivateMembers(String),
    #[error("This connection is a read-only member of '{0}' and cannot send to it.")]
    ReadOnly(String),
    #[error("There is no connection with that id.")]
    UnknownConnection,
    #[error("That connection belongs to another identity.")]
    NotOwner,
    #[error("The cluster could not be reached: {0}")]
    Unavailable(String),
}

/// The kinds of refusal every surface distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The name or the request is wrong (REST 400, Web PubSub `BadRequest`).
    BadRequest,
    /// A channel rule forbids it (REST 400 as PRODUCT.md section 4 says, Web PubSub
    /// `Forbidden`).
    Rule,
    /// The connection is someone else's (REST 403, Web PubSub `Forbidden`).
    NotOwner,
    /// No such connection (REST 404).
    NotFound,
    /// The backplane failed (REST 503, Web PubSub `InternalServerError`).
    Unavailable,
}

impl ChannelError {
    pub fn refusal(&self) -> Refusal {
        match self {
            ChannelError::InvalidName | ChannelError::WrongPrefix(..) => Refusal::BadRequest,
            ChannelError::Entity(_)
            | ChannelError::PrivateJoin(_)
            | ChannelError::PrivateSend(_)
            | ChannelError::PrivateMembers(_)
            | ChannelError::ReadOnly(_) => Refusal::Rule,
            ChannelError::UnknownConnection => Refusal::NotFound,
            ChannelError::NotOwner => Refusal::NotOwner,
            ChannelError::Unavailable(_) => Refusal::Unavailable,
        }
    }
}

pub const MAX_CHANNEL_CHARS: usize = 128;

/// Channel name rules for `api_name`.
#[derive(Debug, Clone)]
pub struct Channels {
    api_name: Arc<str>,
    /// Collection names: their channels are the collections' own (entity channels).
    entities: Arc<HashSet<String>>,
}

impl Channels {
    pub fn new(api_name: &str) -> Self {
        Self {
            api_name: api_name.into(),
            entities: Arc::default(),
        }
    }

    /// Refuse channels named like these collections.
    pub fn with_entities(mut self, collections: impl IntoIterator<Item = String>) -> Self {
        self.entities = Arc::new(collections.into_iter().collect());
        self
    }

    /// A bare channel name as REST endpoints take it (`my-room`).
    pub fn bare(&self, channel: &str) -> Result<Channel, ChannelError> {
        let valid = !channel.is_empty()
            && channel.len() <= MAX_CHANNEL_CHARS
            && channel
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        if !valid {
            return Err(ChannelError::InvalidName);
        }
        if self.entities.contains(channel) {
            return Err(ChannelError::Entity(format!("{}:{channel}", self.api_name)));
        }
        Ok(Channel {
            wire: format!("{}:{channel}", self.api_name),
            kind: if channel.contains(':') {
                ChannelKind::Private
            } else {
                ChannelKind::Regular
            },
        })
    }

    /// A group name as hub methods take it (`app:my-room`).
    pub fn wire(&self, group: &str) -> Result<Channel, ChannelError> {
        let bare = group
            .strip_prefix(&*self.api_name)
            .and_then(|rest| rest.strip_prefix(':'))
            .ok_or_else(|| {
                ChannelError::WrongPrefix(group.to_owned(), self.api_name.to_string())
            })?;
        self.bare(bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_kinds_and_name_rules() {
        let channels = Channels::new("app");
        assert_eq!(
            channels.wire("app:room-1").unwrap(),
            Channel {
                wire: "app:room-1".into(),
                kind: ChannelKind::Regular
            }
        );
        assert_eq!(
            channels.wire("app:room:1").unwrap().kind,
            ChannelKind::Private
        );
        assert_eq!(channels.bare("my.room_2").unwrap().wire, "app:my.room_2");
        assert!(matches!(
            channels.wire("room"),
            Err(ChannelError::WrongPrefix(..))
        ));
        assert!(matches!(
            channels.wire("other:room"),
            Err(ChannelError::WrongPrefix(..))
        ));
        assert!(matches!(
            channels.wire("apple:room"),
            Err(ChannelError::WrongPrefix(..))
        ));
        for bad in ["", "bad name", "é", "a/b", &"x".repeat(129)] {
            assert_eq!(
                channels.bare(bad),
                Err(ChannelError::InvalidName),
                "{bad:?}"
            );
        }
        assert!(channels.bare(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn collection_names_are_entity_channels() {
        let channels = Channels::new("app").with_entities(["products".to_owned()]);
        assert!(matches!(
            channels.wire("app:products"),
            Err(ChannelError::Entity(_))
        ));
        assert!(matches!(
            channels.bare("products"),
            Err(ChannelError::Entity(_))
        ));
        assert!(channels.bare("products-chat").is_ok());
        assert!(
            channels.bare("products:1").is_ok(),
            "a private channel is not the collection"
        );
    }
}
