//! Channels: groups with rthub's naming and access rules (PRODUCT.md section 4), and the hub
//! methods clients use on them.

use hub::{Broadcast, Caller, HubError, HubMethods, Membership, UploadStream};
use serde_json::{json, Value};
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("Channel names are 1-128 characters of letters, digits, '-', '_', '.' and ':'.")]
    InvalidName,
    #[error("Channel '{0}' is not in this application: group names start with '{1}:'.")]
    WrongPrefix(String, String),
    #[error("Channel '{0}' is a collection's: its changes come through Listen or _listen.")]
    Entity(String),
}

pub const MAX_CHANNEL_CHARS: usize = 128;

/// Channel name rules for `api_name`.
#[derive(Debug, Clone)]
pub struct Channels {
    api_name: Arc<str>,
    /// Collection names: their channels are the collections' own (entity channels).
    entities: Arc<std::collections::HashSet<String>>,
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

fn refused(error: impl ToString) -> HubError {
    HubError::Refused(error.to_string())
}

/// The channel message every protocol carries (PRODUCT.md section 5).
pub fn channel_message(
    group: &str,
    data: Value,
    from_user_id: Option<&str>,
    from_connection_id: Option<&str>,
) -> Broadcast {
    Broadcast::new(
        "message",
        vec![json!({
            "group": group,
            "data": data,
            "fromUserId": from_user_id,
            "fromConnectionId": from_connection_id,
        })],
    )
}

/// `JoinGroup`, `LeaveGroup`, `SendToGroup` and `UploadToGroup`.
pub fn hub_methods(channels: Channels, methods: HubMethods) -> HubMethods {
    let (join, leave, send, upload) = (
        channels.clone(),
        channels.clone(),
        channels.clone(),
        channels,
    );
    methods
        .method("JoinGroup", move |caller: Caller, (group,): (String,)| {
            let channel = join.wire(&group);
            async move {
                let channel = channel.map_err(refused)?;
                if channel.kind == ChannelKind::Private && !caller.identity.is_server {
                    return Err(refused(format!(
                        "Channel '{}' is private: only the server can add connections to it.",
                        channel.wire
                    )));
                }
                caller
                    .groups
                    .add_to_group(
                        caller.connection_id.as_str(),
                        &channel.wire,
                        Membership { read_only: false },
                    )
                    .await
                    .map_err(refused)
            }
        })
        .method("LeaveGroup", move |caller: Caller, (group,): (String,)| {
            let channel = leave.wire(&group);
            async move {
                let channel = channel.map_err(refused)?;
                caller
                    .groups
                    .remove_from_group(caller.connection_id.as_str(), &channel.wire)
                    .await
                    .map_err(refused)
            }
        })
        .method(
            "SendToGroup",
            move |caller: Caller, (group, data): (String, Value)| {
                let channel = send.wire(&group);
                async move {
                    let channel = channel.map_err(refused)?;
                    check_may_send(&caller, &channel).await?;
                    send_as(&caller, &channel, data).await;
                    Ok(())
                }
            },
        )
        .upload(
            "UploadToGroup",
            1,
            move |caller: Caller, (group,): (String,), mut streams: Vec<UploadStream>| {
                let channel = upload.wire(&group);
                async move {
                    let channel = channel.map_err(refused)?;
                    check_may_send(&caller, &channel).await?;
                    let mut items = streams.pop().expect("one stream, as registered");
                    while let Some(item) = items.next().await {
                        match item {
                            Ok(data) => send_as(&caller, &channel, data).await,
                            // The client ended its stream with an error: stop sending.
                            Err(error) => {
                                return Err(refused(format!("The upload stream failed: {error}")))
                            }
                        }
                    }
                    Ok(())
                }
            },
        )
}

/// The send rules of PRODUCT.md section 4 for a connection sending from its hub connection.
async fn check_may_send(caller: &Caller, channel: &Channel) -> Result<(), HubError> {
    let membership = caller
        .groups
        .membership(caller.connection_id.as_str(), &channel.wire)
        .await;
    match (channel.kind, membership) {
        (_, Some(Membership { read_only: true })) => Err(refused(format!(
            "This connection is a read-only member of '{}' and cannot send to it.",
            channel.wire
        ))),
        (ChannelKind::Private, None) if !caller.identity.is_server => Err(refused(format!(
            "Channel '{}' is private: only connections the server joined to it may send.",
            channel.wire
        ))),
        _ => Ok(()),
    }
}

async fn send_as(caller: &Caller, channel: &Channel, data: Value) {
    let message = channel_message(
        &channel.wire,
        data,
        caller.identity.user_id.as_deref(),
        Some(caller.connection_id.as_str()),
    );
    let delivery = caller.groups.send_group(&channel.wire, &message).await;
    tracing::trace!(group = %channel.wire, delivered = delivery.delivered, "sent to group");
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

    #[test]
    fn the_channel_message_has_the_product_shape() {
        let message = channel_message("app:r", json!({"a": 1}), None, Some("c1"));
        assert_eq!(message.target, "message");
        assert_eq!(
            message.arguments,
            vec![
                json!({"group": "app:r", "data": {"a": 1}, "fromUserId": null, "fromConnectionId": "c1"})
            ]
        );
    }
}
