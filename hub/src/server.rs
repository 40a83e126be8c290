//! A SignalR hub server: the application's methods, the protocols it speaks and the router its
//! connections are registered in, served on a [`negotiate`] endpoint.

use crate::caller::{close_for, ConnectionContext};
use crate::connection;
use crate::dispatch::{Caller, HubError, HubMethods};
use crate::encoder::HubEncoder;
use crate::options::HubOptions;
use crate::protocol::{Close, HubMessage, HubProtocol, JsonHubProtocol};
use bytes::Bytes;
use dashmap::DashMap;
use negotiate::{ConnectionHandler, ConnectionOptions, Credentials, Identity, RandomId, Rejection};
use router::Router;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

type Authenticator = dyn Fn(&Credentials) -> Result<Identity, Rejection> + Send + Sync;
type DisconnectHook = dyn Fn(&RandomId) + Send + Sync;
type ConnectHook =
    dyn Fn(Caller) -> Pin<Box<dyn Future<Output = Result<(), HubError>> + Send>> + Send + Sync;
type ConnectionInfo =
    dyn Fn(&Credentials, &http::HeaderMap) -> Result<serde_json::Value, Rejection> + Send + Sync;

pub(crate) struct Shared {
    pub methods: HubMethods,
    pub router: Router,
    /// One router encoder per protocol, shared by its connections.
    pub(crate) encoders: Vec<Arc<HubEncoder>>,
    pub options: HubOptions,
    pub protocols: Vec<Arc<dyn HubProtocol>>,
    pub shutdown: CancellationToken,
    authenticate: Box<Authenticator>,
    pub on_disconnect: Vec<Box<DisconnectHook>>,
    pub on_connected: Option<Box<ConnectHook>>,
    /// The hub connections of this process, for `close_connection`.
    pub connections: DashMap<Arc<str>, Arc<ConnectionContext>>,
    connection_info: Option<Box<ConnectionInfo>>,
    /// The slow-consumer `Close`, encoded once per protocol: every connection holds it.
    farewells: Vec<(&'static str, Bytes)>,
}

impl Shared {
    /// The router encoder of `protocol`.
    pub fn encoder(&self, protocol: &Arc<dyn HubProtocol>) -> Arc<HubEncoder> {
        self.encoders
            .iter()
            .find(|e| e.protocol_name() == protocol.name())
            .cloned()
            .unwrap_or_else(|| HubEncoder::new(protocol.clone()))
    }

    /// The frame a connection gets when its outbound queue overflows.
    pub fn farewell(&self, protocol: &dyn HubProtocol) -> Bytes {
        self.farewells
            .iter()
            .find(|(name, _)| *name == protocol.name())
            .map(|(_, frame)| frame.clone())
            .unwrap_or_else(|| farewell_frame(protocol))
    }
}

fn farewell_frame(protocol: &dyn HubProtocol) -> Bytes {
    protocol.to_bytes(&HubMessage::Close(Close {
        error: Some(SLOW_CONSUMER.to_owned()),
        allow_reconnect: true,
    }))
}

const SLOW_CONSUMER: &str = "Connection closed with an error. The connection fell too far behind: its outbound queue was full.";

/// Cheap to clone: clones share one server.
#[derive(Clone)]
pub struct HubServer {
    shared: Arc<Shared>,
}

pub struct HubServerBuilder {
    methods: HubMethods,
    router: Option<Router>,
    options: HubOptions,
    protocols: Vec<Arc<dyn HubProtocol>>,
    authenticate: Box<Authenticator>,
    on_disconnect: Vec<Box<DisconnectHook>>,
    on_connected: Option<Box<ConnectHook>>,
    connection_info: Option<Box<ConnectionInfo>>,
}

impl HubServerBuilder {
    /// Answer `GET {hub}` without `id` with `{ "url", "accessToken" }` (the older
    /// Azure-style redirect some clients still follow).
    pub fn connection_info(
        mut self,
        info: impl Fn(&Credentials, &http::HeaderMap) -> Result<serde_json::Value, Rejection>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.connection_info = Some(Box::new(info));
        self
    }

    /// Run `hook` after a hub connection ended and left its groups (per-connection state the
    /// application keeps elsewhere, such as subscriptions, is released here).
    pub fn on_disconnect(mut self, hook: impl Fn(&RandomId) + Send + Sync + 'static) -> Self {
        self.on_disconnect.push(Box::new(hook));
        self
    }

    /// Run `hook` for each new connection after its handshake, before any of its messages is
    /// handled (.NET's `OnConnectedAsync`). An `Err` refuses the connection: the client gets a
    /// `Close` with the error in .NET's words (`Connection closed with an error. HubException:
    /// …`) and does not reconnect; the `on_disconnect` hooks still run.
    pub fn on_connected<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Caller) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HubError>> + Send + 'static,
    {
        self.on_connected = Some(Box::new(move |caller| Box::pin(hook(caller))));
        self
    }

    pub fn options(mut self, options: HubOptions) -> Self {
        self.options = options;
        self
    }

    /// Share a group space with the application and its other protocols (by default the hub
    /// has a router of its own).
    pub fn router(mut self, router: Router) -> Self {
        self.router = Some(router);
        self
    }

    /// Add a hub protocol beside `json`.
    pub fn protocol(mut self, protocol: Arc<dyn HubProtocol>) -> Self {
        self.protocols.push(protocol);
        self
    }

    /// Judge the credentials of new connections; by default everyone is anonymous.
    pub fn authenticate(
        mut self,
        authenticate: impl Fn(&Credentials) -> Result<Identity, Rejection> + Send + Sync + 'static,
    ) -> Self {
        self.authenticate = Box::new(authenticate);
        self
    }

    pub fn build(self) -> HubServer {
        HubServer {
            shared: Arc::new(Shared {
                methods: self.methods,
                router: self.router.unwrap_or_default(),
                encoders: self
                    .protocols
                    .iter()
                    .map(|p| HubEncoder::new(p.clone()))
                    .collect(),
                options: self.options,
                farewells: self
                    .protocols
                    .iter()
                    .map(|p| (p.name(), farewell_frame(p.as_ref())))
                    .collect(),
                protocols: self.protocols,
                shutdown: CancellationToken::new(),
                authenticate: self.authenticate,
                on_disconnect: self.on_disconnect,
                on_connected: self.on_connected,
                connections: DashMap::new(),
                connection_info: self.connection_info,
            }),
        }
    }
}

impl HubServer {
    pub fn builder(methods: HubMethods) -> HubServerBuilder {
        HubServerBuilder {
            methods,
            router: None,
            options: HubOptions::default(),
            protocols: vec![Arc::new(JsonHubProtocol)],
            authenticate: Box::new(|_| Ok(Identity::anonymous())),
            on_disconnect: Vec::new(),
            on_connected: None,
            connection_info: None,
        }
    }

    /// The group space the hub's connections are in.
    pub fn router(&self) -> &Router {
        &self.shared.router
    }

    /// The router encoder of one of this hub's protocols (`json`, `messagepack`): the frames
    /// its connections get for the router's messages.
    pub fn encoder_for(&self, protocol: &str) -> Option<Arc<dyn router::Encoder>> {
        let encoders = &self.shared.encoders;
        let found = encoders.iter().find(|e| e.protocol_name() == protocol)?;
        Some(found.clone())
    }

    /// Close one connection of this process: it gets a `Close` (with `error` in .NET's words,
    /// and no reconnect), after what is already queued for it. `false` when no hub connection
    /// with that id is here.
    pub fn close_connection(&self, connection_id: &str, error: Option<HubError>) -> bool {
        let Some(context) = self
            .shared
            .connections
            .get(connection_id)
            .map(|c| c.clone())
        else {
            return false;
        };
        let detailed = self.shared.options.enable_detailed_errors;
        context.control.request(close_for(error, detailed));
        true
    }

    /// The ids of this process's hub connections (past their handshake).
    pub fn connection_ids(&self) -> Vec<String> {
        let connections = &self.shared.connections;
        connections.iter().map(|c| c.key().to_string()).collect()
    }

    /// The routes to nest at the hub's path.
    pub fn endpoint(&self, options: ConnectionOptions) -> axum::Router {
        self.endpoint_with(options, &negotiate::Connections::default())
    }

    /// [`Self::endpoint`], its connections shared with the application (which resolves the
    /// ids clients name connections by through them).
    pub fn endpoint_with(
        &self,
        options: ConnectionOptions,
        connections: &negotiate::Connections,
    ) -> axum::Router {
        negotiate::endpoint_with(Arc::new(self.clone()), options, connections)
    }

    /// Ask every connection to close with `allowReconnect: true` (clients with automatic
    /// reconnect come back to another instance), then wait up to `grace` for them to go.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        while !self.shared.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl ConnectionHandler for HubServer {
    fn authenticate(&self, credentials: &Credentials) -> Result<Identity, Rejection> {
        (self.shared.authenticate)(credentials)
    }

    fn connection_info(
        &self,
        credentials: &Credentials,
        headers: &http::HeaderMap,
    ) -> Option<Result<serde_json::Value, Rejection>> {
        self.shared
            .connection_info
            .as_ref()
            .map(|info| info(credentials, headers))
    }

    fn on_connected(
        &self,
        connection: negotiate::TransportConnection,
    ) -> impl Future<Output = ()> + Send + 'static {
        connection::run(self.shared.clone(), connection)
    }
}
