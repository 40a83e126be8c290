//! The SignalR connection layer, after ASP.NET Core's `Http.Connections`: negotiate, connection
//! tokens, and the transports that turn HTTP exchanges into one duplex byte stream per
//! connection. It knows nothing of hubs: the layer above implements [`ConnectionHandler`] and
//! receives each [`TransportConnection`].

mod admission;
mod connection;
mod dispatcher;
mod endpoint;
mod handler;
mod identity;
mod inbound;
mod manager;
mod negotiate;
mod options;
mod query;
mod request;
mod response;
mod transport;

pub use connection::{Inbound, TransportConnection, TransportKind};
pub use endpoint::{endpoint, endpoint_with, Connections};
pub use handler::{ConnectionHandler, Rejection};
pub use identity::{Credentials, Identity, IdentityKind};
pub use inbound::{Closed, InboundReceiver, InboundSender};
pub use options::{ConnectionOptions, Transports};
pub use query::Query;
pub use request::ConnectRequest;
pub use rt_core::{Next, Outbox, PushError, SequenceEncoder, TransferFormat};
pub use rt_core::{RandomId, Redacted};
