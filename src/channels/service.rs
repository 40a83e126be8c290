//! The one place where channel rules are checked: names, private channels, read-only
//! members, entity channels, connection ownership and presence. Every surface (hub methods,
//! REST, Web PubSub) calls this and maps the [`ChannelError`] to its own wire.

use super::{Channel, ChannelError, ChannelKind, Channels};
use router::{GroupMessage, Membership, Payload, Router, RouterError, Scope, Target};
use rt_core::Identity;
use serde::Serialize;
use std::sync::Arc;

/// Who sends: an identity, from one of its connections or (REST, the server) from none.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub identity: &'a Identity,
    pub connection_id: Option<&'a str>,
    /// Whether the sending connection gets its own message (Web PubSub's `noEcho` turns it off).
    pub echo: bool,
}

/// Whose connection an operation is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum On<'a> {
    /// The caller's own (a hub method or a Web PubSub message acting on its connection).
    Own(&'a str),
    /// One named by id (REST): the caller must own it ([`ChannelService::check_owner`]),
    /// which is checked after the channel's own rules.
    Named(&'a str),
}

impl<'a> On<'a> {
    fn id(self) -> &'a str {
        match self {
            On::Own(id) | On::Named(id) => id,
        }
    }
}

/// One page of a channel's members, as `GET /api/_rt/channels/{channel}/members` and the
/// `GroupMembers` hub method answer.
#[derive(Debug, Clone, Serialize)]
pub struct MemberPage {
    pub count: usize,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// `None` for another principal's connection, unless the server asks.
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<Arc<str>>,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<Arc<str>>,
    /// The protocol the connection speaks (`signalr`, …).
    #[schema(value_type = String)]
    pub protocol: &'static str,
    pub read_only: bool,
}

#[derive(Clone)]
pub struct ChannelService {
    names: Channels,
    router: Router,
}

impl ChannelService {
    pub fn new(names: Channels, router: Router) -> Self {
        Self { names, router }
    }

    /// A group name as hub methods and Web PubSub take it (`app:my-room`).
    pub fn wire(&self, group: &str) -> Result<Channel, ChannelError> {
        self.names.wire(group)
    }

    /// A bare channel name as REST takes it (`my-room`).
    pub fn bare(&self, channel: &str) -> Result<Channel, ChannelError> {
        self.names.bare(channel)
    }

    /// Whether `actor` may act on the connection `connection_id` (of any node): the server on
    /// any; anyone on an anonymous one (its id is a bearer capability); a principal on its own.
    pub async fn check_owner(
        &self,
        actor: &Identity,
        connection_id: &str,
    ) -> Result<(), ChannelError> {
        let owner = self
            .router
            .identity(connection_id)
            .await
            .map_err(router_error)?
            .ok_or(ChannelError::UnknownConnection)?;
        if crate::auth::may_act_on(actor, &owner) {
            Ok(())
        } else {
            Err(ChannelError::NotOwner)
        }
    }

    /// Put a connection in a channel on `actor`'s behalf. Private channels take only the
    /// server's joins.
    pub async fn join(
        &self,
        actor: &Identity,
        connection: On<'_>,
        channel: &Channel,
        read_only: bool,
    ) -> Result<(), ChannelError> {
        if channel.kind == ChannelKind::Private && !actor.is_server {
            return Err(ChannelError::PrivateJoin(channel.wire.clone()));
        }
        self.owned(actor, connection).await?;
        let membership = Membership { read_only };
        self.router
            .join(connection.id(), &channel.wire, membership)
            .await
            .map_err(router_error)
    }

    pub async fn leave(
        &self,
        actor: &Identity,
        connection: On<'_>,
        channel: &Channel,
    ) -> Result<(), ChannelError> {
        self.owned(actor, connection).await?;
        self.router
            .leave(connection.id(), &channel.wire)
            .await
            .map_err(router_error)
    }

    async fn owned(&self, actor: &Identity, connection: On<'_>) -> Result<(), ChannelError> {
        match connection {
            On::Own(_) => Ok(()),
            On::Named(id) => self.check_owner(actor, id).await,
        }
    }

    /// Send `data` to a channel's members on every node, after the send rules: a read-only
    /// member may not send; a private channel takes sends from the server and from the
    /// connections the server joined to it.
    pub fn send(
        &self,
        sender: Sender<'_>,
        channel: &Channel,
        data: Payload,
    ) -> Result<router::Delivery, ChannelError> {
        let membership = sender
            .connection_id
            .and_then(|id| self.router.membership(id, &channel.wire));
        match (channel.kind, membership) {
            (_, Some(Membership { read_only: true })) => {
                return Err(ChannelError::ReadOnly(channel.wire.clone()))
            }
            (ChannelKind::Private, None) if !sender.identity.is_server => {
                return Err(ChannelError::PrivateSend(channel.wire.clone()))
            }
            _ => {}
        }
        let group: Arc<str> = channel.wire.as_str().into();
        let message = GroupMessage {
            group: group.clone(),
            data,
            from_user_id: sender.identity.user_id.clone(),
            from_connection_id: sender.connection_id.map(Arc::from),
        };
        let target = match (sender.echo, sender.connection_id) {
            (false, Some(id)) => Target::GroupExcept {
                group,
                except: id.into(),
            },
            _ => Target::Group(group),
        };
        let delivery = self
            .router
            .send(target, Scope::Cluster, Arc::new(message.into()));
        tracing::trace!(group = %channel.wire, delivered = delivery.delivered, "sent to channel");
        Ok(delivery)
    }

    /// A page of a channel's members (`page_no` from 1). Private channels are listed for the
    /// server only; connection ids of other principals are shown to the server only
    /// (`viewer_connection` is the asking connection, whose own id is always shown).
    pub async fn members(
        &self,
        viewer: &Identity,
        viewer_connection: Option<&str>,
        channel: &Channel,
        page_no: usize,
        page_size: usize,
    ) -> Result<MemberPage, ChannelError> {
        if channel.kind == ChannelKind::Private && !viewer.is_server {
            return Err(ChannelError::PrivateMembers(channel.wire.clone()));
        }
        let offset = page_no.saturating_sub(1).saturating_mul(page_size);
        let page = self
            .router
            .cluster_members(&channel.wire, offset, page_size)
            .await
            .map_err(router_error)?;
        let members = page
            .members
            .into_iter()
            .map(|member| {
                let visible = viewer.is_server
                    || viewer_connection == Some(&*member.connection_id)
                    || viewer.same_principal(&member.identity);
                MemberView {
                    connection_id: visible.then_some(member.connection_id),
                    user_id: member.identity.user_id.clone(),
                    protocol: member.protocol.as_str(),
                    read_only: member.read_only,
                }
            })
            .collect();
        Ok(MemberPage {
            count: page.count,
            members,
        })
    }
}

fn router_error(error: RouterError) -> ChannelError {
    ChannelError::from(error)
}

impl From<RouterError> for ChannelError {
    fn from(error: RouterError) -> Self {
        match error {
            RouterError::UnknownConnection => ChannelError::UnknownConnection,
            RouterError::Backplane(error) => ChannelError::Unavailable(error.to_string()),
        }
    }
}
