//! Azure Web PubSub, self-hosted (PRODUCT.md sections 2, 4 and 5; `docs/DECISIONS.md`, "Web
//! PubSub"): the client protocols `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1` at `/api/_rt/ws/client` and Azure's
//! `/client/hubs/{hub}`, the access URL at `GET /api/_rt/ws`, the server SDK's data-plane REST
//! API under `/api/hubs/{hub}`, and upstream events to an event handler. The wire format
//! lives in the `webpubsub` crate; this module is the application around it. Every
//! connection is a router session, so Web PubSub, SignalR and `/realtime` share one group
//! space.

mod access;
pub mod config;
mod connection;
mod endpoint;
mod handle;
pub mod rest;
pub mod token;
pub mod upstream;

pub use access::{ClientAccess, CLIENT_PATH};
pub use config::WebPubSubConfig;
pub use connection::Connections;
pub use upstream::Upstream;

use crate::auth::Authenticator;
use crate::channels::ChannelService;
use axum::http::HeaderMap;
use std::sync::Arc;
use webpubsub::{Subprotocol, WebPubSubEncoder};

/// Everything the Web PubSub endpoints share.
pub struct WebPubSub {
    pub config: Arc<WebPubSubConfig>,
    pub router: router::Router,
    pub channels: ChannelService,
    pub auth: Authenticator,
    pub upstream: Upstream,
    /// The public origin (`public_url`), if configured; else the request's.
    pub public_url: Option<String>,
    /// Signs and checks client tokens: the access key, or a key of this process when none is
    /// configured (rthub's own tokens then work; the server SDK cannot).
    pub signing_key: Arc<str>,
    /// Live and recoverable connections of this process.
    pub connections: Connections,
    json: Arc<WebPubSubEncoder>,
    reliable: Arc<WebPubSubEncoder>,
}

impl WebPubSub {
    pub fn new(
        config: WebPubSubConfig,
        router: router::Router,
        channels: ChannelService,
        auth: Authenticator,
        api_name: &str,
        public_url: Option<String>,
    ) -> Arc<Self> {
        let config = Arc::new(config);
        let signing_key = match &config.access_key {
            Some(key) => key.as_str().into(),
            None => format!("process-{}", rt_core::RandomId::generate().as_str()).into(),
        };
        Arc::new(Self {
            // The handler's abuse-protection check names us by our public host.
            upstream: match &public_url {
                Some(url) => Upstream::new(config.clone()).with_origin(url),
                None => Upstream::new(config.clone()),
            },
            config,
            router,
            channels,
            auth,
            public_url,
            signing_key,
            connections: Connections::default(),
            json: WebPubSubEncoder::new(Subprotocol::Json, api_name),
            reliable: WebPubSubEncoder::new(Subprotocol::JsonReliable, api_name),
        })
    }

    /// The routes: the access URL, the client endpoint at both paths.
    pub fn routes(self: &Arc<Self>) -> axum::Router {
        use axum::routing::get;
        axum::Router::new()
            .route("/api/_rt/ws", get(access::client_access))
            .route(CLIENT_PATH, get(endpoint::connect_rthub))
            .route("/client/hubs/{hub}", get(endpoint::connect_azure))
            .with_state(self.clone())
    }

    /// End every connection: live ones get a `system/disconnected` and a Close (1001: a
    /// reliable client tries to recover, is refused once this process is gone, and starts
    /// afresh elsewhere); parked ones end at once.
    pub fn shutdown(&self) {
        for logical in self.connections.all() {
            if logical.is_parked() || !logical.outbox.is_open() {
                connection::finish(self, &logical, Some("The server is shutting down."));
            } else {
                // Its socket writes this, closes, and ends the connection.
                logical.close_with(
                    1001,
                    webpubsub::frames::disconnected("The server is shutting down."),
                );
            }
        }
    }

    pub(crate) fn encoder(&self, subprotocol: Subprotocol) -> Arc<WebPubSubEncoder> {
        match subprotocol {
            Subprotocol::Json => self.json.clone(),
            Subprotocol::JsonReliable => self.reliable.clone(),
        }
    }

    /// The origin clients reach this server at.
    pub(crate) fn origin(&self, headers: &HeaderMap) -> String {
        match &self.public_url {
            Some(url) => url.clone(),
            None => crate::app::request_origin(headers),
        }
    }
}
