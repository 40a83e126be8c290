//! Upstream events: what a Web PubSub connection does that the application hears about, sent
//! to `[webpubsub] event_handler` as CloudEvents over HTTP (the service's "event handler"), so
//! an Express app with `@azure/web-pubsub-express` handles them unchanged. With no handler
//! configured every event is acknowledged and dropped (a debug log line).

use super::WebPubSubConfig;
use router::Payload;
use std::collections::HashMap;
use std::sync::Arc;

/// Who a connection is, as every upstream event names it.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub hub: Arc<str>,
    pub connection_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
    /// The subprotocol the connection speaks.
    pub subprotocol: &'static str,
}

/// The blocking `connect` event: sent before the connection is accepted.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub context: ConnectionContext,
    /// The token's claims, each as a list of strings (the service's shape).
    pub claims: HashMap<String, Vec<String>>,
    pub query: HashMap<String, Vec<String>>,
    pub headers: HashMap<String, Vec<String>>,
    pub subprotocols: Vec<String>,
}

/// What the handler may change about a connecting client; `None` keeps the token's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectResponse {
    pub user_id: Option<String>,
    pub groups: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub subprotocol: Option<String>,
}

/// Why the handler refused a connection (the upgrade request gets the matching status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectRefusal {
    #[error("the event handler refused the connection (400): {0}")]
    BadRequest(String),
    #[error("the event handler refused the connection (401): {0}")]
    Unauthorized(String),
    #[error("the event handler refused the connection (403): {0}")]
    Forbidden(String),
    #[error("the event handler failed: {0}")]
    Failed(String),
}

/// Why a user event got no answer: the client's ack says `InternalServerError` (the service
/// does not pass the handler's text on).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the event handler failed: {0}")]
pub struct EventFailure(pub String);

#[derive(Clone)]
pub struct Upstream {
    config: Arc<WebPubSubConfig>,
}

impl Upstream {
    pub fn new(config: Arc<WebPubSubConfig>) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &WebPubSubConfig {
        &self.config
    }

    /// The blocking `connect` event. `Ok(None)`: no handler takes it; accept as the token says.
    pub async fn connect(
        &self,
        request: &ConnectRequest,
    ) -> Result<Option<ConnectResponse>, ConnectRefusal> {
        if !self.config.forwards_system_event("connect") {
            return Ok(None);
        }
        tracing::debug!(
            connection_id = %request.context.connection_id,
            "no event handler client for connect yet; accepting as the token says"
        );
        Ok(None)
    }

    /// The `connected` event, after the connection is accepted; never waits.
    pub fn connected(&self, context: &ConnectionContext) {
        if self.config.forwards_system_event("connected") {
            tracing::debug!(connection_id = %context.connection_id, "connected event dropped");
        }
    }

    /// The `disconnected` event; never waits.
    pub fn disconnected(&self, context: &ConnectionContext, reason: Option<&str>) {
        if self.config.forwards_system_event("disconnected") {
            tracing::debug!(connection_id = %context.connection_id, ?reason, "disconnected event dropped");
        }
    }

    /// A user event (`event` messages, `invoke`): the handler's answer, if it has a body.
    pub async fn event(
        &self,
        context: &ConnectionContext,
        name: &str,
        data: &Payload,
    ) -> Result<Option<Payload>, EventFailure> {
        let _ = data;
        tracing::debug!(
            connection_id = %context.connection_id,
            event = name,
            forwarded = self.config.forwards_user_event(name),
            "user event acknowledged and dropped: no event handler"
        );
        Ok(None)
    }
}
