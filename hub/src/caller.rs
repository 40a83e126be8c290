//! The connection a hub method runs for ([`Caller`]): who it is, what request connected it
//! (.NET's `Context.GetHttpContext()` and `IHttpTransportFeature`), and a way to close it.

use crate::errors::{close_error, HubError};
use crate::protocol::Close;
use negotiate::{ConnectRequest, Identity, Query, RandomId, TransportKind};
use parking_lot::Mutex;
use router::{Delivery, Invocation, Outbound, Router, Scope, Target};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The connection that invoked a method.
#[derive(Clone)]
pub struct Caller {
    pub connection_id: RandomId,
    /// The user (what `authenticate` returned for the connection's credentials).
    pub identity: Arc<Identity>,
    /// The group space (shared with every protocol of the application).
    pub groups: Router,
    pub(crate) context: Arc<ConnectionContext>,
}

/// What a connection was opened with: the transport and the HTTP request that connected it
/// (the WebSocket upgrade, the EventSource GET or the first long poll), as at connect time.
pub(crate) struct ConnectionContext {
    pub transport: TransportKind,
    pub request: Arc<ConnectRequest>,
    pub(crate) control: ConnectionControl,
    /// The server's `enable_detailed_errors`, for the texts of closes this connection asks for.
    pub(crate) detailed_errors: bool,
}

impl ConnectionContext {
    pub(crate) fn new(
        transport: TransportKind,
        request: Arc<ConnectRequest>,
        detailed_errors: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            transport,
            request,
            control: ConnectionControl::default(),
            detailed_errors,
        })
    }
}

/// Asks the connection's loop to end with a `Close`; the first request wins.
#[derive(Default)]
pub(crate) struct ConnectionControl {
    closing: CancellationToken,
    close: Mutex<Option<Close>>,
}

impl ConnectionControl {
    pub fn request(&self, close: Close) {
        let mut slot = self.close.lock();
        if slot.is_none() && !self.closing.is_cancelled() {
            *slot = Some(close);
            self.closing.cancel();
        }
    }

    pub async fn requested(&self) -> Close {
        self.closing.cancelled().await;
        self.close.lock().take().unwrap_or_default()
    }
}

/// The `Close` for an application's request: with an error, the client sees it in .NET's
/// words (and does not reconnect); without one, a clean close.
pub(crate) fn close_for(error: Option<HubError>, detailed: bool) -> Close {
    Close {
        error: error.map(|error| close_error(error, detailed)),
        allow_reconnect: false,
    }
}

impl Caller {
    pub(crate) fn new(
        connection_id: RandomId,
        identity: Arc<Identity>,
        groups: Router,
        context: Arc<ConnectionContext>,
    ) -> Self {
        Self {
            connection_id,
            identity,
            groups,
            context,
        }
    }

    /// The transport in use (`WebSockets`, `ServerSentEvents`, `LongPolling`).
    pub fn transport(&self) -> TransportKind {
        self.context.transport
    }

    /// The request that connected the transport: headers, cookies, URI.
    pub fn request(&self) -> &ConnectRequest {
        &self.context.request
    }

    /// A header of the connecting request.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.context.request.header(name)
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(
            RandomId::generate(),
            Arc::new(Identity::anonymous()),
            Router::new(),
            ConnectionContext::new(TransportKind::WebSockets, Arc::default(), false),
        )
    }

    /// Invoke `target` on this connection's client (.NET's `Clients.Caller.SendAsync`).
    pub fn send(&self, target: &'static str, arguments: Vec<serde_json::Value>) -> Delivery {
        let message = Outbound::Invocation(Invocation::new(target, arguments));
        let target = Target::Connection(self.connection_id.as_arc().clone());
        self.groups.send(target, Scope::Local, Arc::new(message))
    }

    /// A cookie of the connecting request.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.context.request.cookie(name)
    }

    /// The connecting request's query string.
    pub fn query(&self) -> Query {
        self.context.request.query()
    }

    /// End this connection after what is already queued (a reply being produced is sent
    /// first), with a `Close` carrying `error` in .NET's words (`HubServer::close_connection`
    /// does the same from outside a method). The message loop acts on it between messages.
    pub fn close(&self, error: Option<HubError>) {
        let close = close_for(error, self.context.detailed_errors);
        self.context.control.request(close);
    }
}
