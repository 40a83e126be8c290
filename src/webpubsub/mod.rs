//! Azure Web PubSub, self-hosted (PRODUCT.md sections 2, 4 and 5; `docs/DECISIONS.md`, "Web
//! PubSub"): the client protocols `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1` at `/api/_rt/ws/client` and Azure's
//! `/client/hubs/{hub}`, the access URL at `GET /api/_rt/ws`, the server SDK's data-plane REST
//! API under `/api/hubs/{hub}`, and upstream events to an event handler. The wire format
//! lives in the `webpubsub` crate; this module is the application around it. Every
//! connection is a router session, so Web PubSub, SignalR and `/realtime` share one group
//! space.

pub mod config;
pub mod token;
pub mod upstream;

pub use config::WebPubSubConfig;
pub use upstream::Upstream;

use crate::auth::Authenticator;
use crate::channels::ChannelService;
use std::sync::Arc;

/// Everything the Web PubSub endpoints share.
pub struct WebPubSub {
    pub config: Arc<WebPubSubConfig>,
    pub router: router::Router,
    pub channels: ChannelService,
    pub auth: Authenticator,
    pub upstream: Upstream,
    /// The public origin (`public_url`), if configured; else the request's.
    pub public_url: Option<String>,
}
