//! The SignalR hub layer, after ASP.NET Core's `SignalR.Core`: hub protocols as pure codecs,
//! the handshake, the hub connection state machine, method dispatch, and the group/lifetime
//! manager that a backplane can replace.
//!
//! Usable on its own as a SignalR server library:
//!
//! ```no_run
//! use hub::{Caller, HubError, HubMethods, HubServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let methods = HubMethods::new().method("Echo", |_: Caller, (text,): (String,)| async move {
//!     Ok::<_, HubError>(text)
//! });
//! let hub = HubServer::builder(methods).build();
//! let app = axum::Router::new().nest("/hub", hub.endpoint(Default::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

mod broadcast;
mod caller;
mod connection;
mod dispatch;
mod errors;
pub mod handshake;
pub mod lifetime;
mod options;
mod paths;
pub mod protocol;
mod sequencing;
mod server;
mod streams;
mod writer;

pub use broadcast::{Broadcast, Encoder};
pub use caller::ConnectionContext;
pub use dispatch::{Caller, FromArguments, HubError, HubMethods, ItemStream, UploadStream};
pub use lifetime::{
    Delivery, GroupError, LifetimeManager, LocalLifetimeManager, Member, Membership,
};
pub use negotiate::{ConnectRequest, TransportKind};
pub use options::HubOptions;
pub use paths::HubPaths;
pub use server::{HubServer, HubServerBuilder};
