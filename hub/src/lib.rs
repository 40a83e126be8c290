//! The SignalR hub layer, after ASP.NET Core's `SignalR.Core`: hub protocols as pure codecs,
//! the handshake, the hub connection state machine and method dispatch. Groups live in the
//! protocol-neutral [`router`] (re-exported here), which the application may share with other
//! protocols and a backplane may extend to other processes.
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
//!
//! What an application gets beside methods (see `docs/DECISIONS.md`, "Hub library"):
//! - **Detailed errors**: [`HubOptions::enable_detailed_errors`] (off by default, as in ASP.NET
//!   Core) puts the failure's `Type: message` after .NET's generic texts; build such failures
//!   with [`HubError::exception`].
//! - **Streams that fail before their first item**: [`HubMethods::try_stream`] completes with
//!   the failed-invocation text, where a failing item gives the streaming-error text.
//! - **Lifecycle**: [`HubServerBuilder::on_connected`] may refuse a connection (the client gets
//!   the `Close` with the error); [`Caller::close`] and [`HubServer::close_connection`] close one
//!   connection with an error.
//! - **The connecting request**: [`Caller::header`], [`Caller::cookie`], [`Caller::query`],
//!   [`Caller::transport`] and [`Caller::identity`] (the user), as .NET's
//!   `Context.GetHttpContext()`.
//! - **Case-insensitive hub paths**: [`HubPaths`] rewrites `/testhub` to a hub served at
//!   `/testHub` in front of the router, as ASP.NET Core's routing matches it.
//!
//! - **Binary and time**: arguments, stream items and results are [`HubValue`]s, which keep
//!   MessagePack `bin` and timestamps (JSON clients get base64 and ISO 8601 strings). Methods
//!   take `Vec<u8>`, `bytes::Bytes`, `chrono::DateTime` or `HubValue` itself, and return
//!   `Bytes`, `Vec<u8>` or [`Timestamp`] to send binary and time.

mod caller;
mod connection;
mod dispatch;
mod encoder;
mod errors;
pub mod handshake;
mod options;
mod paths;
pub mod protocol;
mod sequencing;
mod server;
mod streams;
mod writer;

pub use dispatch::{Caller, FromArguments, HubError, HubMethods, ItemStream, UploadStream};
pub use negotiate::{ConnectRequest, TransportKind};
pub use options::HubOptions;
pub use paths::HubPaths;
pub use protocol::{HubValue, Timestamp};
pub use router;
pub use server::{HubServer, HubServerBuilder};
